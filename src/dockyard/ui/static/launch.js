// The launch dialog of an app page: engine, environment values, data records; then create the deployment,
// set its values by name, start it, and open its page. Each failure is shown where it belongs.
"use strict";
(function () {
  const D = window.Dockyard;
  const dialog = document.getElementById("launch");
  const form = document.getElementById("launch-form");
  const opener = document.getElementById("launch-open");
  if (!dialog || !opener) return;

  opener.addEventListener("click", () => { dialog.showModal(); document.getElementById("launch-engine").focus(); });
  document.getElementById("launch-cancel").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => opener.focus());

  function fieldError(input, text) {
    const box = document.getElementById(input.id + "-error");
    input.setAttribute("aria-invalid", text ? "true" : "false");
    if (box) { box.textContent = text || ""; box.hidden = !text; }
  }

  // data records, searched by a metadata filter as the seed's users do
  const results = document.getElementById("data-results");
  const chosen = new Set();
  async function searchRecords() {
    const input = document.getElementById("data-filter");
    const params = new URLSearchParams({last: "50", orderby: "created:desc"});
    if (input.value.trim()) params.set("filter", input.value.trim());
    const r = await D.api("GET", "data-record?" + params.toString());
    if (!r.ok) { fieldError(input, D.message(r)); return; }
    fieldError(input, "");
    results.replaceChildren();
    const found = r.body.resources || [];
    if (!found.length) { results.append(D.el("p", {class: "muted", text: "No records match."})); return; }
    const list = D.el("ul", {class: "checks", "aria-label": "Records found"});
    found.forEach((rec, i) => {
      const box = D.el("input", {type: "checkbox", id: "rec-" + i, value: rec.id, checked: chosen.has(rec.id)});
      box.addEventListener("change", () => { if (box.checked) chosen.add(rec.id); else chosen.delete(rec.id); });
      const label = (rec.name || rec.id) + (rec["content-type"] ? " · " + rec["content-type"] : "");
      list.append(D.el("li", {}, [box, D.el("label", {for: "rec-" + i, text: label})]));
    });
    results.append(D.el("p", {class: "muted", text: r.body.count + " found; tick those to attach."}), list);
  }
  document.getElementById("data-search").addEventListener("click", searchRecords);
  // an error goes once the field is edited
  form.addEventListener("input", (ev) => { if (ev.target.getAttribute("aria-invalid") === "true") fieldError(ev.target, ""); });
  document.getElementById("data-filter").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); searchRecords(); }
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    D.say("launch-error", "");
    const envInputs = Array.from(form.querySelectorAll("input[data-env]"));
    let firstBad = null;
    for (const input of envInputs) {
      const missing = input.required && !input.value.trim();
      fieldError(input, missing ? input.dataset.env + " is required: give it a value." : "");
      if (missing && !firstBad) firstBad = input;
    }
    const engine = document.getElementById("launch-engine");
    if (!engine.value) { fieldError(engine, "Choose an engine to launch on."); firstBad = firstBad || engine; }
    if (firstBad) { firstBad.focus(); return; }
    const go = document.getElementById("launch-go");
    go.disabled = true; go.textContent = "Launching…";
    try {
      await launch(engine, envInputs);
    } finally {
      go.disabled = false; go.textContent = "Launch";
    }
  });

  async function launch(engine, envInputs) {
    const body = {module: {href: dialog.dataset.module}, parent: engine.value};
    if (chosen.size) {
      body["data-records"] = {};
      chosen.forEach((id) => { body["data-records"][id] = {}; });
    }
    const created = await D.api("POST", "deployment", body);
    if (!created.ok) {
      const m = D.message(created);
      if (/credential|engine|parent/.test(m)) fieldError(engine, m); else D.say("launch-error", m);
      return;
    }
    const id = created.body["resource-id"];
    const page = "/ui/deployments/" + id.split("/")[1];
    const values = envInputs.map((i) => ({name: i.dataset.env, value: i.value}));
    if (values.length) {
      const edited = await D.api("PUT", id, {module: {content: {"environmental-variables": values}}});
      if (!edited.ok) {
        D.say("launch-error", "The deployment was created but its values were refused: " + D.message(edited));
        return;
      }
    }
    const started = await D.api("POST", id + "/start", {});
    if (!started.ok) {
      // the deployment exists: its page says what happened and can start it again
      window.location.assign(page + "?start-error=" + encodeURIComponent(D.message(started)));
      return;
    }
    window.location.assign(page);
  }
})();
