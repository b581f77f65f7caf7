// The app editor: repeated rows (ports, variables, outputs, mounts, URLs), then a save through the API,
// whose validation messages are shown at the field they name.
"use strict";
(function () {
  const D = window.Dockyard;
  const form = document.getElementById("app-form");
  if (!form) return;
  const PATH_RE = /^[a-zA-Z0-9][\w.-]*(\/[a-zA-Z0-9][\w.-]*)*$/;
  const SEGMENT_RE = /^[a-zA-Z0-9][\w.-]*$/;

  // every control of a row gets an id and its label a `for`, so each is named for assistive technology
  function number(section) {
    const key = section.dataset.section;
    section.querySelectorAll("[data-rows] > [data-row]").forEach((row, i) => {
      row.dataset.index = i;
      row.querySelectorAll(".field").forEach((field) => {
        const input = field.querySelector("[data-key]");
        const label = field.querySelector("label");
        if (!input || !label) return;
        input.id = "f-" + key + "-" + i + "-" + input.dataset.key;
        label.htmlFor = input.id;
      });
      const remove = row.querySelector("[data-remove]");
      const first = row.querySelector("[data-key]");
      remove.setAttribute("aria-label", "Remove " + section.querySelector("legend").textContent.toLowerCase()
        + " row " + (i + 1) + (first && first.value ? " (" + first.value + ")" : ""));
    });
  }

  form.querySelectorAll("fieldset[data-section]").forEach((section) => {
    number(section);
    section.querySelector("[data-add]").addEventListener("click", () => {
      const tpl = section.querySelector("template[data-template]");
      const rows = section.querySelector("[data-rows]");
      rows.append(tpl.content.cloneNode(true));
      number(section);
      rows.lastElementChild.querySelector("[data-key]").focus();
    });
    section.addEventListener("click", (ev) => {
      const button = ev.target.closest("[data-remove]");
      if (!button) return;
      button.closest("[data-row]").remove();
      number(section);
      section.querySelector("[data-add]").focus();
    });
  });

  function parseImage(text) {
    text = text.trim();
    if (!text) return null;
    const image = {};
    const slash = text.lastIndexOf("/");
    const colon = text.lastIndexOf(":");
    if (colon > slash) { image.tag = text.slice(colon + 1); text = text.slice(0, colon); }
    const parts = text.split("/");
    image["image-name"] = parts.pop();
    if (parts.length > 1 && /[.:]|^localhost$/.test(parts[0])) image.registry = parts.shift();
    if (parts.length) image.repository = parts.join("/");
    return image;
  }

  function rowsOf(key) {
    const section = form.querySelector('fieldset[data-section="' + key + '"]');
    return Array.from(section.querySelectorAll("[data-rows] > [data-row]")).map((row) => {
      const item = key === "urls" ? ["", ""] : {};
      row.querySelectorAll("[data-key]").forEach((input) => {
        const k = input.dataset.key;
        let v;
        if (input.type === "checkbox") v = input.checked;
        else if (input.type === "number") v = input.value.trim() === "" ? undefined : Number(input.value);
        else v = input.value.trim() === "" ? undefined : input.value.trim();
        if (key === "urls") item[Number(k)] = v || "";
        else if (v !== undefined && v !== false) item[k] = v;
      });
      return item;
    });
  }

  function content() {
    const out = {};
    const image = parseImage(document.getElementById("f-image").value);
    if (image) out.image = image;
    for (const key of ["ports", "environmental-variables", "output-parameters", "mounts", "urls"]) {
      const rows = rowsOf(key);
      if (rows.length) out[key] = rows;
    }
    const commit = document.getElementById("f-commit").value.trim();
    if (commit) out.commit = commit;
    return out;
  }

  // -- errors at the field they concern ----------------------------------------------------------------
  function clearErrors() {
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    form.querySelectorAll(".error[role=alert]").forEach((el) => { el.textContent = ""; el.hidden = true; });
  }

  function showAt(input, box, text) {
    if (input) {
      input.setAttribute("aria-invalid", "true");
      if (box && box.id) {
        const ids = new Set((input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean));
        ids.add(box.id);
        input.setAttribute("aria-describedby", Array.from(ids).join(" "));
      }
    }
    box.textContent = box.textContent ? box.textContent + "\n" + text : text;
    box.hidden = false;
    return input || box;
  }

  function fieldError(id, text) {
    return showAt(document.getElementById(id), document.getElementById(id + "-error"), text);
  }

  const TOP_FIELDS = {image: "f-image", name: "f-name", description: "f-description", commit: "f-commit",
                      path: "f-path"};
  const PLAIN = [
    [/must be an integer from 1 to 65535|must be an integer/, "must be a whole number from 1 to 65535"],
  ];

  function plain(text) {
    for (const [re, said] of PLAIN) if (re.test(text)) return text.replace(re, said);
    return text;
  }

  // one line of the API's schema message, e.g. "content: attribute 'ports' element 0 is invalid:
  // attribute 'target-port' must be ..."; returns the element it was shown at
  function place(line) {
    const m = line.match(/^(?:content: )?(?:attribute '([^']+)'|missing required attribute '([^']+)')(.*)$/);
    if (!m) return null;
    const top = m[1] || m[2];
    const rest = m[3] || "";
    const section = form.querySelector('fieldset[data-section="' + top + '"]');
    if (section) {
      const el = rest.match(/^ element (\d+) (?:is invalid: )?(.*)$/);
      if (el) {
        const row = section.querySelectorAll("[data-rows] > [data-row]")[Number(el[1])];
        if (row) {
          const inner = el[2].match(/(?:attribute|missing required attribute) '([^']+)'\s*(.*)/);
          const input = inner ? row.querySelector('[data-key="' + inner[1] + '"]') : null;
          const text = inner ? (inner[2] ? inner[1] + " " + plain(inner[2]) : inner[1] + " is required") : plain(el[2]);
          return showAt(input, row.querySelector("[data-row-error]"), text);
        }
      }
      return showAt(null, section.querySelector("[data-section-error]"), top + plain(rest));
    }
    const id = TOP_FIELDS[top] || (top === "image-name" || /image/.test(top) ? "f-image" : null);
    if (id && document.getElementById(id)) {
      return fieldError(id, m[2] ? "This is required." : (top === "image" ? "Image " : top + " ") + plain(rest.replace(/^ /, "")));
    }
    return null;
  }

  function showApiError(result) {
    const message = D.message(result);
    const lines = message.split("\n").slice(message.includes("does not satisfy") ? 1 : 0);
    let first = null;
    for (const line of lines) {
      const at = place(line.trim());
      first = first || at;
      if (!at) D.say("form-error", (document.getElementById("form-error").textContent + "\n" + line).trim());
    }
    if (/already exist/.test(message) && document.getElementById("f-path")) {
      first = fieldError("f-path", "An app or project already has this path: choose another name.");
    } else if (/No parent project|Parent must be a project|edit rights for/.test(message) && document.getElementById("f-project")) {
      first = fieldError("f-project", message);
    }
    (first || document.getElementById("form-error")).focus && (first || document.getElementById("form-error")).focus();
  }

  // -- save ------------------------------------------------------------------------------------------------
  async function ensureProject(path) {
    const r = await D.api("POST", "module", {path: path, subtype: "project", name: path.split("/").pop()});
    if (r.ok || r.status === 409) return true;
    fieldError("f-project", "Could not create the project: " + D.message(r));
    return false;
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors();
    const save = document.getElementById("save");
    const moduleId = form.dataset.module;
    const body = {content: content()};
    const name = document.getElementById("f-name").value.trim();
    const description = document.getElementById("f-description").value.trim();
    if (name) body.name = name;
    if (description) body.description = description;
    if (!body.content.image) { fieldError("f-image", "Give the image to run, e.g. nginx:stable."); document.getElementById("f-image").focus(); return; }
    save.disabled = true;
    try {
      let r;
      if (moduleId) {
        const drop = ["name", "description"].filter((k) => !body[k]);
        r = await D.api("PUT", moduleId + (drop.length ? "?select=" + drop.join(",") : ""), body);
      } else {
        const project = document.getElementById("f-project").value.trim().replace(/\/+$/, "");
        const segment = document.getElementById("f-path").value.trim();
        let bad = false;
        if (!PATH_RE.test(project)) { fieldError("f-project", "A project path is made of letters, digits, '.', '_' and '-', with '/' between levels."); bad = true; }
        if (!SEGMENT_RE.test(segment)) { fieldError("f-path", "An app name is made of letters, digits, '.', '_' and '-', starting with a letter or digit."); bad = true; }
        if (bad) { form.querySelector("[aria-invalid=true]").focus(); return; }
        if (!(await ensureProject(project))) { document.getElementById("f-project").focus(); return; }
        body.path = project + "/" + segment;
        body.subtype = "component";
        r = await D.api("POST", "module", body);
      }
      if (!r.ok) { showApiError(r); return; }
      const id = moduleId || r.body["resource-id"];
      window.location.assign("/ui/apps/" + id.split("/")[1]);
    } finally {
      save.disabled = false;
    }
  });
})();
