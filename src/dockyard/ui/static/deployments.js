// The deployment list: bulk stop and delete through the API, and state badges kept live by the event stream.
"use strict";
(function () {
  const D = window.Dockyard;
  const table = document.getElementById("deployments");
  const badges = JSON.parse(document.getElementById("badges").dataset.badges);
  const stopButton = document.getElementById("bulk-stop");
  const deleteButton = document.getElementById("bulk-delete");
  if (!table) return;

  function picked() { return Array.from(table.querySelectorAll("input.pick:checked")).map((b) => b.value); }
  function refresh() {
    const n = picked().length;
    stopButton.disabled = deleteButton.disabled = n === 0;
    stopButton.textContent = n ? "Stop selected (" + n + ")" : "Stop selected";
    deleteButton.textContent = n ? "Delete selected (" + n + ")" : "Delete selected";
  }
  table.addEventListener("change", refresh);
  // a deleted deployment leaves the list and the count (once, whether the API's answer or the stream says so)
  const count = document.getElementById("count");
  function removeRow(id) {
    const row = table.querySelector('tr[data-id="' + id + '"]');
    if (!row) return;
    row.remove();
    const n = Math.max(Number(count.dataset.count) - 1, 0);
    count.dataset.count = n;
    count.firstElementChild.textContent = n + " deployment" + (n === 1 ? "" : "s");
    refresh();
  }
  document.getElementById("select-all").addEventListener("change", (ev) => {
    table.querySelectorAll("input.pick").forEach((b) => { b.checked = ev.target.checked; });
    refresh();
  });

  function named(id) {
    const short = id.split("/")[1].slice(0, 8);
    const link = table.querySelector('tr[data-id="' + id + '"] a');
    return link ? link.textContent + " (" + short + ")" : short;
  }

  async function bulk(verb, ids) {
    D.say("bulk-error", "");
    D.say("bulk-status", verb === "stop" ? "Stopping " + ids.length + "…" : "Deleting " + ids.length + "…");
    // each refusal named as the list shows it (its name and short id), in the list's order
    const names = new Map(ids.map((id) => [id, named(id)]));
    const results = await Promise.all(ids.map(async (id) => {
      const r = verb === "stop" ? await D.api("POST", id + "/stop", {}) : await D.api("DELETE", id);
      if (r.ok && verb === "delete") removeRow(id);
      return r.ok ? null : names.get(id) + ": " + D.message(r);
    }));
    const failures = results.filter((f) => f !== null);
    const done = ids.length - failures.length;
    D.say("bulk-status", (verb === "stop" ? "Asked " + done + " to stop." : "Deleted " + done + "."));
    if (failures.length) D.say("bulk-error", failures.length + " could not be " + (verb === "stop" ? "stopped" : "deleted") + ":\n" + failures.join("\n"));
    refresh();
  }
  stopButton.addEventListener("click", () => bulk("stop", picked()));
  deleteButton.addEventListener("click", () => {
    const ids = picked();
    if (window.confirm("Delete " + ids.length + " deployment(s)? Only created or stopped ones can be deleted.")) bulk("delete", ids);
  });

  // live badges: one stream for the deployments this page shows
  const ids = Array.from(table.querySelectorAll("tr[data-id]")).map((r) => r.dataset.id);
  if (!ids.length || !window.EventSource) return;
  const filter = "id=[" + ids.map((id) => "'" + id + "'").join(" ") + "]";
  const events = new EventSource("/api/event-stream?types=deployment&filter=" + encodeURIComponent(filter));
  function onChange(ev) {
    const doc = JSON.parse(ev.data);
    const row = table.querySelector('tr[data-id="' + doc.id + '"]');
    if (!row) return;
    if (ev.type === "delete") { removeRow(doc.id); return; }
    const [label, colour] = badges[doc.state] || [String(doc.state).toLowerCase(), "grey"];
    const cell = row.querySelector("td.state");
    cell.replaceChildren(D.el("span", {class: "badge badge-" + colour, "data-state": doc.state, text: label}));
  }
  ["edit", "delete"].forEach((t) => events.addEventListener(t, onChange));
  events.addEventListener("overflow", () => { events.close(); window.location.reload(); });
})();
