// The data pages: key = value rows of the records search, and the upload of a file as a data object
// (create it through the API, ask its upload action for a pre-signed URL, PUT the bytes with a progress bar,
// then mark it ready), with the API's messages at the field they concern.
"use strict";
(function () {
  const D = window.Dockyard;

  // -- records: add and remove key = value rows ----------------------------------------------------------
  const pairs = document.getElementById("pairs");
  if (pairs) {
    const renumber = () => {
      pairs.querySelectorAll("[data-pair]").forEach((row, i) => {
        row.querySelectorAll("[id]").forEach((el) => { el.id = el.id.replace(/^(key|value)-[^-]+/, "$1-" + i); });
        row.querySelectorAll("label[for]").forEach((el) => { el.htmlFor = el.htmlFor.replace(/^(key|value)-[^-]+/, "$1-" + i); });
        row.querySelectorAll("[aria-describedby]").forEach((el) => {
          el.setAttribute("aria-describedby", el.getAttribute("aria-describedby").replace(/^key-[^-]+/, "key-" + i));
        });
      });
    };
    document.getElementById("add-pair").addEventListener("click", () => {
      pairs.append(document.getElementById("pair-template").content.cloneNode(true));
      renumber();
      pairs.lastElementChild.querySelector("input").focus();
    });
    pairs.addEventListener("click", (ev) => {
      const button = ev.target.closest("[data-remove-pair]");
      if (!button) return;
      const rows = pairs.querySelectorAll("[data-pair]");
      if (rows.length === 1) {  // the last row is emptied rather than removed
        rows[0].querySelectorAll("input").forEach((input) => { input.value = ""; });
        rows[0].querySelector("input").focus();
        return;
      }
      button.closest("[data-pair]").remove();
      renumber();
      document.getElementById("add-pair").focus();
    });
  }

  // -- objects: upload -------------------------------------------------------------------------------------
  const form = document.getElementById("upload-form");
  if (!form) return;
  const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
  const $ = (id) => document.getElementById(id);
  const progress = $("up-progress");
  let xhr = null;

  function size(bytes) {
    if (bytes === 1) return "1 Byte";
    if (bytes < 1024) return bytes + " Bytes";
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let n = bytes / 1024, u = 0;
    while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
    return n.toFixed(1) + " " + units[u];
  }

  function clearErrors() {
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    form.querySelectorAll(".error[role=alert]").forEach((el) => { el.textContent = ""; el.hidden = true; });
  }

  function fieldError(input, text) {
    input.setAttribute("aria-invalid", "true");
    D.say(input.id + "-error", text);
    input.focus();
  }

  // the API's message at the field it names ("attribute 'bucket' ...", "bucket 'x' ... belongs to another account")
  function showApiError(text) {
    for (const m of text.matchAll(/attribute '([^']+)'/g)) {
      const input = form.querySelector('[data-attr="' + m[1] + '"]');
      if (input) { fieldError(input, text); return; }
    }
    if (/\bbucket\b/i.test(text)) { fieldError($("up-bucket"), text); return; }
    D.say("upload-form-error", text);
  }

  function setProgress(loaded, total) {
    const pct = total ? Math.floor(loaded * 100 / total) : 100;
    progress.value = pct;
    $("up-progress-text").textContent = pct + "% (" + size(loaded) + " of " + size(total) + ")";
  }

  // PUT the bytes at the pre-signed URL; resolves on a 2xx, rejects with words saying what went wrong
  function put(uri, file, contentType) {
    return new Promise((resolve, reject) => {
      xhr = new XMLHttpRequest();
      xhr.open("PUT", uri);
      xhr.setRequestHeader("Content-Type", contentType);
      xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) setProgress(ev.loaded, ev.total); };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) { setProgress(file.size, file.size); resolve(); return; }
        let said = "";
        try { said = JSON.parse(xhr.responseText).message || ""; } catch (err) { said = ""; }
        reject(new Error("The store refused the file (" + xhr.status + ")" + (said ? ": " + said : ".")));
      };
      xhr.onerror = () => reject(new Error("The upload stopped: the connection to the store was lost. Try again."));
      xhr.onabort = () => reject(new Error("You cancelled the upload; nothing was kept."));
      xhr.send(file);
    });
  }

  function row(doc) {
    const uuid = doc.id.split("/")[1];
    const name = doc.name || doc.object;
    const nameCell = D.el("td", {"data-label": "Name", text: name});
    if (doc.description) nameCell.append(D.el("br"), D.el("span", {class: "muted", text: doc.description}));
    return D.el("tr", {"data-testid": "data-object", "data-id": doc.id}, [
      nameCell,
      D.el("td", {class: "hide-narrow mono", text: doc.bucket + "/" + doc.object}),
      D.el("td", {class: "num", "data-label": "Size", text: size(doc.bytes || 0)}),
      D.el("td", {"data-label": "State"}, [D.el("span", {class: "badge badge-green", text: "ready"})]),
      D.el("td", {class: "hide-narrow nowrap", text: (doc.created || "").slice(0, 19).replace("T", " ")}),
      D.el("td", {}, [D.el("a", {href: "/ui/data/objects/" + uuid + "/download", download: doc.object.split("/").pop(),
                                 "aria-label": "Download " + name, text: "Download"})]),
    ]);
  }

  $("up-cancel").addEventListener("click", () => { if (xhr) xhr.abort(); });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors();
    $("upload-done").hidden = true;
    const file = $("up-file").files[0];
    if (!file) { fieldError($("up-file"), "Choose the file to upload."); return; }
    const bucket = $("up-bucket").value.trim();
    if (!BUCKET_RE.test(bucket)) {
      fieldError($("up-bucket"), "A bucket name has 3 to 63 characters: lower-case letters, digits, dots and dashes, beginning and ending with a letter or digit.");
      return;
    }
    const objectKey = $("up-object").value.trim() || file.name;
    const name = $("up-name").value.trim() || file.name;
    const contentType = file.type || "application/octet-stream";
    const body = {name: name, template: {href: "data-object-template/generic", bucket: bucket, object: objectKey,
                                         credential: $("up-store").value, "content-type": contentType}};
    if ($("up-description").value.trim()) body.description = $("up-description").value.trim();

    const submit = $("up-submit");
    submit.disabled = true;
    let id = null;
    try {
      const created = await D.api("POST", "data-object", body);
      if (!created.ok) { showApiError(D.message(created)); return; }
      id = created.body["resource-id"];
      const upload = await D.api("POST", id + "/upload", {});
      if (!upload.ok) throw new Error("Dockyard could not prepare the upload: " + D.message(upload));
      $("up-progress-box").hidden = false;
      setProgress(0, file.size);
      $("up-cancel").hidden = false;
      await put(upload.body.uri, file, contentType);
      $("up-cancel").hidden = true;
      const ready = await D.api("POST", id + "/ready", {});
      if (!ready.ok) throw new Error("The file arrived, but Dockyard could not record it: " + D.message(ready));
      document.querySelector("#objects-table tbody").prepend(row(ready.body));
      $("objects-empty").hidden = true;
      const count = document.querySelector("[data-testid=objects-count]");
      count.dataset.count = Number(count.dataset.count) + 1;
      count.textContent = count.dataset.count + (count.dataset.count === "1" ? " file" : " files");
      D.say("upload-done", "Uploaded “" + name + "”: " + size(ready.body.bytes || 0) + ", MD5 " + (ready.body.md5sum || "?") + ".");
      id = null;
      $("up-file").value = "";
      $("up-name").value = "";
      $("up-object").value = "";
      $("up-description").value = "";
    } catch (err) {
      $("up-cancel").hidden = true;
      D.say("upload-form-error", err.message);
      if (id) await D.api("DELETE", id);  // no half-uploaded object left behind
    } finally {
      submit.disabled = false;
      xhr = null;
    }
  });
})();
