// A deployment's page, live: state, phases, URLs, parameters and jobs from the event stream; the log and the
// CPU/memory chart from their own streams. Nothing here polls.
"use strict";
(function () {
  const D = window.Dockyard;
  const initial = JSON.parse(document.getElementById("initial").textContent);
  const L = initial.lifecycle;
  let dep = initial.deployment;
  const rid = dep.id;
  const uuid = rid.split("/")[1];
  const params = new Map(initial.parameters.map((p) => [p.id, p]));
  const jobs = new Map(initial.jobs.map((j) => [j.id, j]));
  const $ = (id) => document.getElementById(id);
  const PHASES = ["queued", "claimed", "pulled", "created", "started", "ready"];

  // -- rendering -----------------------------------------------------------------------------------------
  function badge(state) {
    const [label, colour] = L.badges[state] || [String(state || "unknown").toLowerCase(), "grey"];
    return D.el("span", {class: "badge badge-" + colour, "data-state": state, text: label});
  }

  function seconds(a, b) { return (Date.parse(b) - Date.parse(a)) / 1000; }
  function took(s) {
    if (!(s >= 0)) return "";
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 60) return s.toFixed(1) + " s";
    return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
  }
  function clock(ts) { return ts ? new Date(ts).toLocaleTimeString() : ""; }

  function renderTimeline() {
    const phases = dep.phases || {};
    const list = $("timeline");
    list.replaceChildren();
    let previous = null;
    for (const name of PHASES) {
      const at = phases[name];
      const item = D.el("li", {class: at ? "" : "pending", "data-phase": name});
      item.append(D.el("span", {class: "phase", text: name}));
      if (at) {
        item.append(D.el("span", {text: clock(at)}));
        if (previous) item.append(D.el("span", {class: "muted small", text: " +" + took(seconds(previous, at))}));
        previous = at;
      } else if (name === "ready" && dep.ready === false) {  // the checks did not pass in time: why
        item.className = "";
        item.append(D.el("span", {class: "error", text: "not ready: " + (dep["ready-message"] || "")}));
      } else if (name === "ready" && dep.state === "STARTED" && dep["ready-message"]) {
        item.append(D.el("span", {class: "muted", text: "checking: " + dep["ready-message"]}));
      } else {
        item.append(D.el("span", {class: "muted", text: "not yet"}));
      }
      list.append(item);
    }
    const end = phases.ready && phases.ready >= (phases.started || "") ? phases.ready : phases.started;
    if (phases.queued && end) {
      list.append(D.el("li", {}, [D.el("span", {class: "phase", text: "total"}),
                                  D.el("span", {text: took(seconds(phases.queued, end))})]));
    }
  }

  function values() {
    const out = {};
    for (const e of (dep.module.content || {})["environmental-variables"] || []) if (e.value) out[e.name] = e.value;
    for (const p of params.values()) if (p.value !== undefined && p.value !== null && p.value !== "") out[p.name] = p.value;
    return out;
  }

  function renderUrls() {
    const list = $("urls");
    const urls = (dep.module.content || {}).urls || [];
    list.replaceChildren();
    if (!urls.length) { list.append(D.el("li", {class: "muted", text: "The app declares none."})); return; }
    const known = values();
    for (const [label, pattern] of urls) {
      let missing = false;
      const url = pattern.replace(/\$\{([^}]+)\}/g, (_, name) => {
        if (known[name] === undefined) { missing = true; return "${" + name + "}"; }
        return known[name];
      });
      const item = D.el("li", {"data-url": label});
      if (dep.state === "STARTED" && !missing) {
        item.append(D.el("strong", {text: label + ": "}), D.el("a", {href: url, target: "_blank", rel: "noopener", text: url}));
      } else {
        item.append(D.el("strong", {text: label + ": "}), D.el("span", {class: "mono", text: url}),
                    D.el("span", {class: "muted small", text: " (a link once the deployment is started" + (missing ? " and its values are known)" : ")")}));
      }
      list.append(item);
    }
  }

  function renderParams() {
    const body = $("params");
    body.replaceChildren();
    const sorted = Array.from(params.values()).sort((a, b) => a.name.localeCompare(b.name));
    if (!sorted.length) body.append(D.el("tr", {}, [D.el("td", {colspan: "3", class: "muted", text: "None yet: they appear as the deployment starts."})]));
    for (const p of sorted) {
      const has = p.value !== undefined && p.value !== null && p.value !== "";
      body.append(D.el("tr", {"data-param": p.name}, [
        D.el("td", {class: "mono", text: p.name}),
        D.el("td", {class: "mono value" + (has ? "" : " muted"), text: has ? p.value : "not set yet"}),
        D.el("td", {class: "hide-narrow", text: p.description || ""}),
      ]));
    }
  }

  // the values this deployment starts with (given at launch, or kept by a clone)
  function renderEnv() {
    const body = $("env");
    const vars = (dep.module.content || {})["environmental-variables"] || [];
    body.replaceChildren();
    if (!vars.length) body.append(D.el("tr", {}, [D.el("td", {colspan: "2", class: "muted", text: "The app declares none."})]));
    for (const e of vars) {
      const has = e.value !== undefined && e.value !== null && e.value !== "";
      body.append(D.el("tr", {"data-env": e.name}, [
        D.el("td", {class: "mono", text: e.name}),
        D.el("td", {class: "mono value" + (has ? "" : " muted"), text: has ? e.value : "not set"}),
      ]));
    }
  }

  function renderJobs() {
    const body = $("jobs");
    body.replaceChildren();
    const sorted = Array.from(jobs.values()).sort((a, b) => (b.created || "").localeCompare(a.created || ""));
    if (!sorted.length) body.append(D.el("tr", {}, [D.el("td", {colspan: "4", class: "muted", text: "No jobs yet."})]));
    for (const j of sorted) {
      const state = (j.state || "").toLowerCase();
      body.append(D.el("tr", {"data-job": j.id}, [
        D.el("td", {class: "mono", text: (j.action || "").replace(/_/g, " ")}),
        D.el("td", {text: state + (j.state === "RUNNING" && j.progress ? " " + j.progress + " %" : "")}),
        D.el("td", {class: j.state === "FAILED" ? "error" : "", text: j["status-message"] || ""}),
        D.el("td", {class: "hide-narrow nowrap", text: (j.created || "").replace("T", " ").slice(0, 19)}),
      ]));
    }
  }

  function renderState() {
    $("state").replaceChildren(badge(dep.state));
    const ops = new Set((dep.operations || []).map((o) => o.rel));
    $("act-start").disabled = !ops.has("start");
    $("act-stop").disabled = !ops.has("stop");
    $("act-clone").disabled = !ops.has("clone");
    $("act-delete").disabled = !ops.has("delete");
    const message = dep["status-message"] || "";
    const failed = dep.state === "ERROR";
    if (failed) {
      $("failure").hidden = false;
      $("failure").textContent = "The deployment failed: " + (message || "the engine gave no reason") +
        ". Stop it to clean up, then start it again or change the app.";
    } else if (!$("failure").dataset.keep) {
      $("failure").hidden = true;
    }
    D.say("status-message", !failed && message ? message : "");
  }

  function renderAll() { renderState(); renderTimeline(); renderUrls(); renderParams(); renderEnv(); renderJobs(); }

  // -- the event stream: deployment, its parameters, its jobs -------------------------------------------------
  let events = null;
  function live(on, text) {
    $("live-dot").classList.toggle("on", on);
    $("live-text").textContent = text;
  }
  function connect() {
    const filter = "id='" + rid + "' or parent='" + rid + "' or target-resource/href='" + rid + "'";
    events = new EventSource("/api/event-stream?types=deployment,deployment-parameter,job&filter=" + encodeURIComponent(filter));
    // what changed between the page's read and this subscription would be lost: read again once subscribed
    events.onopen = () => { live(true, "live"); reread(); };
    events.onerror = () => live(false, "reconnecting…");
    ["add", "edit", "delete"].forEach((type) => events.addEventListener(type, (ev) => onChange(type, JSON.parse(ev.data))));
    events.addEventListener("overflow", async () => { events.close(); await reread(); connect(); });
  }
  function onChange(type, doc) {
    const kind = doc["resource-type"];
    if (fresh) fresh.add(doc.id);
    if (kind === "deployment") {
      if (type === "delete") { live(false, "deleted"); $("failure").hidden = false; $("failure").textContent = "This deployment was deleted."; return; }
      const before = dep.state;
      dep = Object.assign({}, dep, doc, {operations: operationsFor(doc.state)});
      renderState(); renderTimeline(); renderUrls(); renderEnv();
      if (before !== dep.state) stateChanged();
    } else if (kind === "deployment-parameter") {
      if (type === "delete") params.delete(doc.id); else params.set(doc.id, doc);
      renderParams(); renderUrls();
    } else if (kind === "job") {
      if (type === "delete") jobs.delete(doc.id); else jobs.set(doc.id, doc);
      renderJobs();
    }
  }
  // the stream leaves out operations: derive them from the lifecycle, as deploy/lifecycle.py does
  function operationsFor(state) {
    const rels = ["clone"];
    if (L.startable.includes(state)) rels.push("start");
    if (L.stoppable.includes(state)) rels.push("stop");
    if (L.deletable.includes(state)) rels.push("delete");
    const allowed = new Set((initial.deployment.operations || []).map((o) => o.rel));
    // what this user may do at all was decided by the server: keep within it (a viewer gets no buttons)
    const mayEdit = allowed.has("edit") || allowed.has("start") || allowed.has("stop") || allowed.has("delete");
    return rels.filter((r) => mayEdit || (r === "clone" && allowed.has("clone"))).map((r) => ({rel: r}));
  }
  // ids the stream brought while a reread was on its way: the stream's copy is at least as new as what the
  // reads return (they may have read before the change), and any later change comes as an event of its own
  let fresh = null;
  function merge(map, docs) {
    const found = new Set(docs.map((x) => x.id));
    for (const id of Array.from(map.keys())) if (!found.has(id) && !fresh.has(id)) map.delete(id);
    for (const x of docs) if (!fresh.has(x.id)) map.set(x.id, x);
  }
  async function reread() {
    fresh = new Set();
    const [d, p, j] = await Promise.all([
      D.api("GET", rid),
      D.api("GET", "deployment-parameter?filter=" + encodeURIComponent("parent='" + rid + "'") + "&last=1000"),
      D.api("GET", "job?filter=" + encodeURIComponent("target-resource/href='" + rid + "'") + "&orderby=created:desc&last=50")]);
    const before = dep.state;
    if (d.ok && !fresh.has(rid)) dep = d.body;
    if (p.ok) merge(params, p.body.resources);
    if (j.ok) merge(jobs, j.body.resources);
    fresh = null;
    renderAll();
    if (before !== dep.state) stateChanged();
  }

  // -- logs -----------------------------------------------------------------------------------------------
  let logStream = null;
  const logBox = $("log");
  function openLog() {
    if (logStream) logStream.close();
    logBox.textContent = "";
    $("log-state").textContent = "following";
    $("log-note").textContent = "";
    logStream = new EventSource("/api/deployment/" + uuid + "/log-stream?tail=500");
    logStream.onmessage = (ev) => {
      const stick = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
      logBox.append(ev.data.replace(/^\S+Z /, "") + "\n");
      if (stick) logBox.scrollTop = logBox.scrollHeight;
    };
    logStream.addEventListener("end", (ev) => {
      logStream.close(); logStream = null;
      $("log-state").textContent = "";
      const never = !logBox.textContent && !(dep.phases || {}).started;  // a failed start: nothing ran to log
      $("log-note").textContent = never ? "No log: the container never started." : JSON.parse(ev.data).message;
    });
    logStream.onerror = () => {
      // a refusal (no container yet) or a dropped connection: the next state change opens it again
      if (logStream) logStream.close();
      logStream = null;
      $("log-state").textContent = "";
      if (!logBox.textContent) $("log-note").textContent = "No log yet: it appears once the container runs.";
    };
  }

  // -- CPU and memory -----------------------------------------------------------------------------------------
  let statsStream = null;
  const samples = [];
  function mib(bytes) { return bytes >= 1 << 30 ? (bytes / (1 << 30)).toFixed(2) + " GiB" : (bytes / (1 << 20)).toFixed(1) + " MiB"; }
  function drawChart() {
    const n = 60;
    const shown = samples.slice(-n);
    const cpuMax = Math.max(100, ...shown.map((s) => s["cpu-percent"]));
    const memMax = Math.max(1, ...shown.map((s) => s["memory-bytes"])) * 1.25;
    const x = (i) => (300 * (i + n - shown.length) / (n - 1)).toFixed(1);
    $("cpu-line").setAttribute("points", shown.map((s, i) => x(i) + "," + (100 - 100 * s["cpu-percent"] / cpuMax).toFixed(1)).join(" "));
    $("mem-line").setAttribute("points", shown.map((s, i) => x(i) + "," + (100 - 100 * s["memory-bytes"] / memMax).toFixed(1)).join(" "));
  }
  function openStats() {
    if (statsStream) return;
    statsStream = new EventSource("/api/deployment/" + uuid + "/stats-stream");
    statsStream.addEventListener("stats", (ev) => {
      const s = JSON.parse(ev.data);
      samples.push(s);
      if (samples.length > 120) samples.shift();
      $("cpu-now").textContent = s["cpu-percent"].toFixed(1) + " %";
      $("mem-now").textContent = mib(s["memory-bytes"]) + " of " + mib(s["memory-limit-bytes"]);
      $("stats-note").textContent = "Live, one sample a second.";
      drawChart();
    });
    const end = () => {
      if (statsStream) statsStream.close();
      statsStream = null;
      samples.length = 0;  // no stale figures once the container has stopped
      $("cpu-now").textContent = $("mem-now").textContent = "–";
      $("cpu-line").setAttribute("points", ""); $("mem-line").setAttribute("points", "");
      $("stats-note").textContent = "Shown while the container runs.";
    };
    statsStream.addEventListener("end", end);
    statsStream.onerror = end;
  }

  function stateChanged() {
    if (L.loggable.includes(dep.state) || dep.state === "STOPPED") {
      if (!logStream || dep.state === "STOPPED") openLog();
    }
    if (dep.state === "STARTED") openStats();
  }

  // -- buttons ------------------------------------------------------------------------------------------------
  async function act(button, run) {
    D.say("action-error", "");
    button.disabled = true;
    try { await run(); } finally { renderState(); }
  }
  $("act-start").addEventListener("click", (ev) => act(ev.target, async () => {
    $("failure").dataset.keep = "";
    const r = await D.api("POST", rid + "/start", {});
    if (!r.ok) D.say("action-error", "Could not start: " + D.message(r));
  }));
  $("act-stop").addEventListener("click", (ev) => act(ev.target, async () => {
    const r = await D.api("POST", rid + "/stop", {});
    if (!r.ok) D.say("action-error", "Could not stop: " + D.message(r));
  }));
  $("act-clone").addEventListener("click", (ev) => act(ev.target, async () => {
    const r = await D.api("POST", rid + "/clone", {});
    if (!r.ok) { D.say("action-error", "Could not clone: " + D.message(r)); return; }
    window.location.assign("/ui/deployments/" + r.body["resource-id"].split("/")[1]);
  }));
  $("act-delete").addEventListener("click", (ev) => act(ev.target, async () => {
    if (!window.confirm("Delete this deployment? Its parameters and logs go with it.")) return;
    const r = await D.api("DELETE", rid);
    if (!r.ok) { D.say("action-error", "Could not delete: " + D.message(r)); return; }
    window.location.assign("/ui/deployments");
  }));

  if ($("failure").textContent.trim()) $("failure").dataset.keep = "1";
  renderAll();
  connect();
  stateChanged();
  if (!logStream && !L.loggable.includes(dep.state)) $("log-note").textContent = "No log yet: it appears once the container runs.";
})();
