// Dockyard's shared page helpers: calling the JSON API, and showing its messages where they belong.
"use strict";
window.Dockyard = (function () {
  // fetch the API as the logged-in user; resolves to {ok, status, body} and never throws on an HTTP error
  async function api(method, path, body, headers) {
    const init = {method: method, headers: Object.assign({"Accept": "application/json"}, headers || {}),
                  credentials: "same-origin"};
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch("/api/" + path.replace(/^\/?(api\/)?/, ""), init);
    } catch (err) {
      return {ok: false, status: 0, body: {message: "The server did not answer: check your connection and try again."}};
    }
    let parsed = {};
    try { parsed = await response.json(); } catch (err) { parsed = {}; }
    return {ok: response.ok, status: response.status, body: parsed};
  }

  // the API's message in plain words (a schema failure names the attribute; keep just its lines)
  function message(result) {
    const m = (result.body && result.body.message) || ("The request failed (" + result.status + ").");
    if (result.status === 403 && /credentials/.test(m)) {
      return "You are not allowed to do this (" + m + "). Your session may have ended: log in again.";
    }
    return m;
  }

  // show a message in the element with id `id` (role=alert), or clear it
  function say(id, text) {
    const el = document.getElementById(id);
    if (!el) return;
    el.textContent = text || "";
    el.hidden = !text;
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  return {api: api, message: message, say: say, el: el};
})();
