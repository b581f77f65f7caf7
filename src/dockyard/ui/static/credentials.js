// The credentials page: API keys (create, the secret shown once, copy, revoke), engine and registry
// credentials (add through the API's templates, check, delete). Every write goes through the JSON API, and
// its message is shown at the field or row it concerns.
"use strict";
(function () {
  const D = window.Dockyard;
  const STATUS = {VALID: ["valid", "green"], INVALID: ["invalid", "red"], UNKNOWN: ["unknown", "grey"]};
  const FLASH = "dockyard.credentials.flash";

  function announce(text) {
    const live = document.getElementById("page-status");
    live.textContent = "";
    window.setTimeout(() => { live.textContent = text; }, 50);
  }

  // -- errors at the field they concern ------------------------------------------------------------------
  function clearErrors(form) {
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    form.querySelectorAll(".error[role=alert]").forEach((el) => { el.textContent = ""; el.hidden = true; });
  }

  function fieldError(input, text) {
    const box = document.getElementById(input.id + "-error");
    input.setAttribute("aria-invalid", "true");
    box.textContent = text;
    box.hidden = false;
    input.focus();
  }

  function formError(form, text) {
    const box = form.querySelector("[data-form-error]") || document.getElementById(form.id + "-error");
    box.textContent = text;
    box.hidden = false;
    box.scrollIntoView({block: "nearest"});
  }

  // the API names the attribute it refuses ("template attribute 'ttl' must be ..."): show it there
  function showApiError(form, result, attrs) {
    const text = D.message(result);
    for (const m of text.matchAll(/attribute '([^']+)'/g)) {
      const input = attrs(m[1]);
      if (input) { fieldError(input, text); return; }
    }
    formError(form, text);
  }

  // -- API keys --------------------------------------------------------------------------------------------
  const keyForm = document.getElementById("key-form");
  const panel = document.getElementById("new-key");
  const keysBody = document.querySelector("#keys-table tbody");

  function keyRow(id, name, description, expiry) {
    const nameCell = D.el("td", {"data-label": "Name"}, [D.el("strong", {text: name || "(no name)"})]);
    if (description) nameCell.append(D.el("br"), D.el("span", {class: "muted", text: description}));
    const revoke = D.el("button", {type: "button", class: "small danger", "data-delete": id, "data-name": name || id,
                                   "data-kind": "key", "aria-label": "Revoke " + (name || id), text: "Revoke"});
    return D.el("tr", {"data-cred": id, "data-testid": "api-key"}, [
      nameCell, D.el("td", {"data-label": "Key"}, [D.el("code", {text: id})]),
      D.el("td", {class: "hide-narrow", text: new Date().toISOString().slice(0, 19).replace("T", " ")}),
      D.el("td", {"data-label": "Expires (UTC)", text: expiry || "never"}),
      D.el("td", {}, [revoke, D.el("p", {class: "error", "data-row-error": true, role: "alert", hidden: true})]),
    ]);
  }

  keyForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(keyForm);
    const name = document.getElementById("key-name");
    const description = document.getElementById("key-description");
    const ttlInput = document.getElementById("key-ttl");
    if (!name.value.trim()) {
      fieldError(name, "Give the key a name, so that you can tell it from your other keys later.");
      return;
    }
    let ttl = 0;
    const ttlText = ttlInput.value.trim();
    if (ttlText) {
      if (!/^\d+$/.test(ttlText) || Number(ttlText) < 1) {
        fieldError(ttlInput, "Enter a whole number greater than 0, or leave it empty for a key that never expires.");
        return;
      }
      ttl = Number(ttlText) * Number(document.getElementById("key-ttl-unit").value);
    }
    const body = {name: name.value.trim(), template: {href: "credential-template/generate-api-key", ttl: ttl}};
    if (description.value.trim()) body.description = description.value.trim();
    const button = document.getElementById("key-create");
    button.disabled = true;
    const r = await D.api("POST", "credential", body);
    button.disabled = false;
    if (!r.ok) {
      showApiError(keyForm, r, (attr) => ({ttl: ttlInput, name: name, description: description})[attr]);
      return;
    }
    const id = r.body["resource-id"];
    let expiry = "";
    if (ttl) {  // what the page knows; the list shows the stored expiry after a reload
      expiry = new Date(Date.now() + ttl * 1000).toISOString().slice(0, 16).replace("T", " ") + " (about)";
    }
    keysBody.prepend(keyRow(id, body.name, body.description, expiry));
    document.getElementById("keys-empty").hidden = true;
    document.getElementById("keys-wrap").hidden = false;
    document.getElementById("new-key-id").textContent = id;
    document.getElementById("new-key-secret").textContent = r.body["secret-key"];
    document.getElementById("copy-status").textContent = "";
    panel.hidden = false;
    panel.focus();
    keyForm.reset();
  });

  panel.addEventListener("click", async (ev) => {
    const button = ev.target.closest("[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    const what = button.dataset.copy === "new-key-secret" ? "secret" : "key";
    const status = document.getElementById("copy-status");
    try {
      await navigator.clipboard.writeText(source.textContent);
      status.textContent = "The " + what + " is in your clipboard.";
    } catch (err) {
      // no clipboard (an insecure origin, or refused): select it so that Ctrl+C copies it
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      status.textContent = "Your browser did not let the page copy: the " + what + " is selected, press Ctrl+C (⌘C) to copy it.";
    }
  });

  document.getElementById("new-key-done").addEventListener("click", () => {
    document.getElementById("new-key-secret").textContent = "";
    document.getElementById("new-key-id").textContent = "";
    panel.hidden = true;
    document.getElementById("key-name").focus();
  });

  // -- delete (revoke), after a confirmation -------------------------------------------------------------
  const dialog = document.getElementById("confirm-dialog");

  function confirmDialog(title, text, yes) {
    document.getElementById("confirm-title").textContent = title;
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-yes").textContent = yes;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), {once: true});
    });
  }

  document.addEventListener("click", async (ev) => {
    const button = ev.target.closest("[data-delete]");
    if (!button) return;
    const id = button.dataset.delete;
    const name = button.dataset.name;
    const key = button.dataset.kind === "key";
    const ok = await confirmDialog(
      key ? "Revoke this API key?" : "Delete this credential?",
      key ? "Revoke “" + name + "”? Scripts using it can no longer log in, and the sessions opened with it end now. This cannot be undone."
          : "Delete “" + name + "”? Deployments can no longer use it. This cannot be undone.",
      key ? "Revoke key" : "Delete credential");
    if (!ok) { button.focus(); return; }
    const row = button.closest("tr");
    const err = row.querySelector("[data-row-error]");
    err.hidden = true;
    button.disabled = true;
    const r = await D.api("DELETE", id);
    if (!r.ok) {
      button.disabled = false;
      err.textContent = (key ? "Could not revoke it: " : "Could not delete it: ") + D.message(r);
      err.hidden = false;
      button.focus();
      return;
    }
    const table = row.closest("table");
    const section = row.closest("section");
    row.remove();
    if (key && !keysBody.children.length) {
      document.getElementById("keys-empty").hidden = false;
      document.getElementById("keys-wrap").hidden = true;
    }
    announce(key ? "Revoked “" + name + "”: it can no longer log in." : "Deleted “" + name + "”.");
    const next = table.querySelector("button[data-delete]");
    if (next && !table.closest("[hidden]")) { next.focus(); return; }
    const heading = section.querySelector("h2");
    heading.tabIndex = -1;
    heading.focus();
  });

  // -- check an engine's credential: the job's outcome, then the credential's new status -----------------
  const sleep = (ms) => new Promise((resolve) => window.setTimeout(resolve, ms));

  function badge(status) {
    const [label, colour] = STATUS[status] || [(status || "unknown").toLowerCase(), "grey"];
    return D.el("span", {class: "badge badge-" + colour, "data-status": status || "", text: label});
  }

  document.addEventListener("click", async (ev) => {
    const button = ev.target.closest("[data-check]");
    if (!button) return;
    const id = button.dataset.check;
    const row = button.closest("tr");
    const said = row.querySelector("[data-row-status]");
    const err = row.querySelector("[data-row-error]");
    err.hidden = true;
    said.hidden = false;
    said.textContent = "Checking…";
    button.disabled = true;
    try {
      const r = await D.api("POST", id + "/check");
      if (!r.ok) { err.textContent = "Could not check it: " + D.message(r); err.hidden = false; said.hidden = true; return; }
      const jobId = r.body.location;
      let job = null;
      for (let i = 0; i < 120; i++) {
        const j = await D.api("GET", jobId);
        if (j.ok && ["SUCCESS", "FAILED", "CANCELED"].includes(j.body.state)) { job = j.body; break; }
        await sleep(i < 10 ? 300 : 1000);
      }
      const c = await D.api("GET", id);
      if (c.ok) {
        const cell = row.querySelector('[data-col="status"]');
        cell.replaceChildren(badge(c.body.status));
        if (c.body["last-check"]) {
          cell.append(D.el("br"), D.el("span", {class: "muted", "data-col": "last-check",
                                                text: "checked " + c.body["last-check"].slice(0, 19).replace("T", " ") + " UTC"}));
        }
      }
      if (!job) { said.textContent = "The check is still running: reload the page later to see its outcome."; return; }
      if (job.state === "SUCCESS") {
        said.textContent = "It works: " + (job["status-message"] || "the engine answers") + ".";
      } else {
        said.hidden = true;
        err.textContent = "The check failed: " + (job["status-message"] || "no reason was given") + ".";
        err.hidden = false;
      }
    } finally {
      button.disabled = false;
    }
  });

  // -- add an engine or registry credential through its template ----------------------------------------
  document.querySelectorAll("form.cred-form").forEach((form) => {
    const parent = form.querySelector('[data-param="parent"]');
    const fresh = form.querySelector("fieldset[id$='-new']");
    const subtype = form.id === "engine-form" ? "swarm" : "registry";
    if (fresh) parent.addEventListener("change", () => { fresh.hidden = parent.value !== "new"; });

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const byParam = (attr) => form.querySelector('[data-param="' + attr + '"]');
      const byInfra = (attr) => form.querySelector('[data-infra="' + attr + '"]');
      const value = (input) => input.value.trim();
      const name = byParam("name");
      if (!value(name)) { fieldError(name, "Give the credential a name."); return; }
      if (!parent.value) { fieldError(parent, "Choose the " + (subtype === "swarm" ? "engine" : "registry") + "."); return; }
      const submit = form.querySelector("button[type=submit]");
      submit.disabled = true;
      let created = null;
      try {
        let parentId = parent.value;
        if (parentId === "new") {
          const endpoint = byInfra("endpoint");
          if (!value(endpoint)) { fieldError(endpoint, "Enter the endpoint, e.g. " + endpoint.placeholder + "."); return; }
          const infra = {template: {href: "infrastructure-service-template/generic", subtype: subtype,
                                    endpoint: value(endpoint)}};
          if (value(byInfra("name"))) infra.name = value(byInfra("name"));
          const r = await D.api("POST", "infrastructure-service", infra);
          if (!r.ok) { showApiError(form, r, byInfra); return; }
          created = parentId = r.body["resource-id"];
        }
        const body = {name: value(name), template: {href: form.dataset.template, parent: parentId}};
        form.querySelectorAll("[data-param]").forEach((input) => {
          const k = input.dataset.param;
          if (k === "name" || k === "parent") return;
          const v = input.dataset.secret !== undefined ? input.value : value(input);
          if (!v) return;
          if (k === "description") body.description = v; else body.template[k] = v;
        });
        const r = await D.api("POST", "credential", body);
        if (!r.ok) {
          if (created) await D.api("DELETE", created);  // no engine left behind without its credential
          showApiError(form, r, byParam);
          return;
        }
        form.querySelectorAll("[data-secret]").forEach((input) => { input.value = ""; });
        window.sessionStorage.setItem(FLASH, "Added “" + body.name + "”." +
          (subtype === "swarm" ? " Dockyard is checking that the engine answers." : ""));
        window.location.reload();
      } finally {
        submit.disabled = false;
      }
    });
  });

  const flash = window.sessionStorage.getItem(FLASH);
  if (flash) {
    window.sessionStorage.removeItem(FLASH);
    const note = D.el("p", {class: "notice", role: "status", "data-testid": "flash", text: flash});
    document.querySelector("main h1").after(note);
  }
})();
