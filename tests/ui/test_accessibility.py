"""Accessibility of every main page, at laptop and phone size, checked in the browser as it renders them:

* every control (input, select, textarea, button, link) has an accessible name, as Chromium computes it for
  assistive technology, from a label, aria-label, aria-labelledby or its text — not from a placeholder;
* text contrast is at least 4.5:1 (3:1 for large text): each visible text's computed colour against its
  effective background (the first opaque background up its ancestors, translucent ones blended in);
* Tab moves focus through the page's controls in document order, and each focused control shows a focus
  indicator (outline or box-shadow differing from its unfocused look) of at least 3:1 against what is
  around it;
* on a phone, the page itself does not scroll sideways;
* and the launch dialog can be opened, filled and closed with the keyboard alone.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

from .conftest import LAPTOP, PHONE, api_app, api_deploy, image_of, login, make_user, user_client, wait_state

# what the checks below share: colours, composited backgrounds, visibility
HELPERS = r"""
window.__a11y = (() => {
  const rgba = (s) => {
    const m = /rgba?\(([^)]+)\)/.exec(s || "");
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => {
    const a = top[3] + bottom[3] * (1 - top[3]);
    return [0, 1, 2].map((i) => (top[i] * top[3] + bottom[i] * bottom[3] * (1 - top[3])) / a).concat([a]);
  };
  // the first opaque background up the ancestors, with the translucent ones above it blended in
  const background = (el) => {
    const layers = [];
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = [255, 255, 255, 1];  // the canvas
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const opacity = (el) => { let o = 1; for (let n = el; n && n.nodeType === 1; n = n.parentElement) o *= Number(getComputedStyle(n).opacity); return o; };
  const describe = (el) => {
    let d = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "");
    if (el.getAttribute("class")) d += "." + el.getAttribute("class").trim().split(/\s+/).join(".");
    const text = (el.getAttribute("aria-label") || el.textContent || el.value || "").trim().replace(/\s+/g, " ");
    return d + (text ? ' "' + text.slice(0, 40) + '"' : "");
  };
  const modal = () => document.querySelector("dialog[open]");
  const rendered = (el) => {
    // checkVisibility also sees what a closed <details> hides (content-visibility, not display)
    if (!el.checkVisibility({visibilityProperty: true}) || !el.getClientRects().length) return false;
    const m = modal();
    return !(m && !m.contains(el));  // behind an open modal dialog nothing can be reached or read
  };
  const CONTROLS = "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]";
  const ring = (el) => {
    const s = getComputedStyle(el);
    return s.outlineStyle + " " + s.outlineWidth + " " + s.outlineColor + " | " + s.boxShadow;
  };
  return {rgba, over, background, ratio, opacity, describe, rendered, CONTROLS, ring, modal};
})();
"""

# the deployment page reads everything again once its event stream is open (and redraws its lists): wait
# until nothing but the once-a-second CPU and memory figures has changed for 400 ms
SETTLED = r"""
() => new Promise((resolve) => {
  const done = () => { observer.disconnect(); resolve(true); };
  let timer = setTimeout(done, 400);
  const observer = new MutationObserver((changes) => {
    const el = (n) => (n.nodeType === 1 ? n : n.parentElement);
    if (changes.some((c) => !el(c.target).closest(".stats-values, svg, #stats-note"))) {
      clearTimeout(timer);
      timer = setTimeout(done, 400);
    }
  });
  observer.observe(document.body, {childList: true, subtree: true, attributes: true, characterData: true});
})
"""

CONTRAST = r"""
() => {
  const A = window.__a11y;
  const root = A.modal() || document.body;
  const bad = [];
  for (const el of [root, ...root.querySelectorAll("*")]) {
    const tag = el.tagName;
    if (el.closest("svg, template, script, style, noscript") || tag === "OPTION" || tag === "OPTGROUP") continue;
    const field = ["INPUT", "SELECT", "TEXTAREA"].includes(tag) && el.type !== "checkbox" && el.type !== "file";
    const ownText = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!ownText && !(field && (el.value || tag === "SELECT"))) continue;
    if (!A.rendered(el) || el.closest(":disabled")) continue;  // disabled controls are exempt (WCAG 1.4.3)
    const r = el.getBoundingClientRect();
    if (r.right <= 0 || r.bottom <= 0 || r.width <= 1 || r.height <= 1) continue;  // off screen or for readers only
    const s = getComputedStyle(el);
    const bg = A.background(el);
    const fg = A.rgba(s.color);
    const text = A.over([fg[0], fg[1], fg[2], fg[3] * A.opacity(el)], bg);
    const size = parseFloat(s.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700);
    const need = large ? 3 : 4.5;
    const got = A.ratio(text, bg);
    if (got < need) bad.push(A.describe(el) + ": " + got.toFixed(2) + ":1 < " + need + ":1 (" + s.color +
                             " on rgb(" + bg.slice(0, 3).map(Math.round).join(", ") + "))");
  }
  return bad;
}
"""

# the controls Tab should visit, in document order; each tagged for the CDP look-up of its name
TAB_STOPS = r"""
() => {
  const A = window.__a11y;
  const root = A.modal() || document;
  const stops = Array.from(root.querySelectorAll(A.CONTROLS)).filter((el) =>
    !el.disabled && el.tabIndex >= 0 && !el.closest("[inert]") && A.rendered(el));
  document.querySelectorAll("[data-a11y]").forEach((el) => el.removeAttribute("data-a11y"));
  stops.forEach((el, i) => el.setAttribute("data-a11y", String(i)));
  return stops.map(A.describe);
}
"""

# where focus goes, and how it looks there: recorded as it happens
WATCH_FOCUS = r"""
() => {
  const A = window.__a11y;
  window.__unfocused = new Map();
  document.querySelectorAll(A.CONTROLS).forEach((el) => window.__unfocused.set(el, A.ring(el)));
  window.__visits = [];
  document.addEventListener("focusin", (ev) => {
    const el = ev.target;
    const s = getComputedStyle(el);
    const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
    const shadow = s.boxShadow !== "none";
    // an outline is drawn around the element: it must stand out from what is behind the element
    const around = A.background(el.parentElement || el);
    const ringRatio = outline ? A.ratio(A.rgba(s.outlineColor), around) : null;
    window.__visits.push({stop: el.getAttribute("data-a11y"), what: A.describe(el),
                          changed: window.__unfocused.get(el) !== A.ring(el), shown: outline || shadow,
                          ratio: ringRatio});
  });
}
"""



@pytest.fixture(scope="module")
def world(ui_server, test_app_image):
    """One user with something on every page: an app with every section, a started deployment, a data
    record and a file, an API key (and the events all that made)."""
    name, password = make_user(ui_server, "a11y")
    tag = uuid.uuid4().hex[:8]
    with user_client(ui_server, name, password) as api:
        module = api_app(api, image_of(test_app_image), name="Accessible app", description="Checked by the tests.",
                         ports=[{"target-port": 80}],
                         urls=[["web", "http://${hostname}:${tcp.80}/"]],
                         **{"environmental-variables": [{"name": "GREETING", "required": True, "description": "said first"},
                                                        {"name": "TARGET", "value": "world"}],
                            "output-parameters": [{"name": "token", "description": "set by the container"}]})
        dep = api_deploy(api, module, start=True, name="accessible deployment")
        resp = api.post("data-record-key-prefix", json={"prefix": f"a{tag}", "uri": "https://example.org/a"})
        assert resp.status_code == 201, resp.text
        resp = api.post("data-record", json={"name": "a record", "infrastructure-service":
                                             "infrastructure-service/local-storage", f"a{tag}:mission": "alpha"})
        assert resp.status_code == 201, resp.text
        resp = api.post("data-object", json={"template": {
            "href": "data-object-template/generic", "bucket": f"a11y-{tag}", "object": "notes.txt",
            "credential": "credential/local-storage", "content-type": "text/plain"}})
        assert resp.status_code == 201, resp.text
        oid = resp.json()["resource-id"]
        uri = api.post(f"{oid}/upload", json={}).json()["uri"]
        assert httpx.put(uri, content=b"notes", headers={"Content-Type": "text/plain"}).status_code in (200, 204)
        assert api.post(f"{oid}/ready", json={}).status_code == 200
        resp = api.post("credential", json={"name": "laptop key", "template": {
            "href": "credential-template/generate-api-key", "ttl": 3600}})
        assert resp.status_code == 201, resp.text
        wait_state(api, dep, "STARTED")
    yield {"name": name, "password": password, "app": module.split("/")[1], "dep": dep.split("/")[1]}
    with user_client(ui_server, name, password) as api:
        api.post(f"{dep}/stop", json={})


@pytest.fixture(scope="module")
def user_page(browser, ui_server, world):
    """One logged-in tab for every page of the module (logging in for each would double the time)."""
    context = browser.new_context(base_url=ui_server.endpoint, viewport=LAPTOP)
    context.set_default_timeout(15_000)
    context.add_init_script(HELPERS)
    page = context.new_page()
    login(page, world["name"], world["password"])
    yield page
    context.close()


def open_launch_dialog(page: Page) -> None:
    page.locator("#launch-open").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()


PAGES = {
    "login": ("/ui/login", None),
    "apps": ("/ui/apps", None),
    "app": ("/ui/apps/{app}", None),
    "app-editor": ("/ui/apps/{app}/edit", None),
    "launch-dialog": ("/ui/apps/{app}", open_launch_dialog),
    "deployments": ("/ui/deployments", None),
    "deployment": ("/ui/deployments/{dep}", None),
    "credentials": ("/ui/credentials", None),
    "data": ("/ui/data", None),
    "data-objects": ("/ui/data/objects", None),
    "events": ("/ui/events", None),
}


def names_missing(page: Page) -> list[str]:
    """Controls with no accessible name, or one that comes only from a placeholder or title, as Chromium's
    accessibility tree has them."""
    cdp = page.context.new_cdp_session(page)
    try:
        page.evaluate("""() => { const A = window.__a11y; const root = A.modal() || document;
            document.querySelectorAll('[data-a11y-ctl]').forEach((el) => el.removeAttribute('data-a11y-ctl'));
            root.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea').forEach((el, i) => {
              if (A.rendered(el)) el.setAttribute('data-a11y-ctl', A.describe(el)); }); }""")
        doc = cdp.send("DOM.getDocument", {"depth": 0})
        nodes = cdp.send("DOM.querySelectorAll", {"nodeId": doc["root"]["nodeId"], "selector": "[data-a11y-ctl]"})
        bad = []
        for node_id in nodes["nodeIds"]:
            what = cdp.send("DOM.getAttributes", {"nodeId": node_id})["attributes"]
            what = dict(zip(what[::2], what[1::2]))["data-a11y-ctl"]
            [ax, *_] = cdp.send("Accessibility.getPartialAXTree", {"nodeId": node_id, "fetchRelatives": False})["nodes"]
            name = (ax.get("name") or {}).get("value", "").strip()
            used = [s for s in (ax.get("name") or {}).get("sources", []) if s.get("value") and not s.get("superseded")]
            if not name:
                bad.append(f"{what}: no accessible name")
            elif used and used[0].get("type") == "placeholder" or used and used[0].get("attribute") == "title":
                bad.append(f"{what}: named only by its {used[0].get('attribute') or used[0].get('type')}")
        return bad
    finally:
        cdp.detach()


def keyboard_problems(page: Page) -> list[str]:
    """Tab from the top (or, in a dialog, from where opening it put focus) through every control."""
    stops = page.evaluate(TAB_STOPS)
    problems = []
    if page.evaluate("() => !!window.__a11y.modal()"):
        first = page.evaluate("() => document.activeElement.getAttribute('data-a11y')")
        if first != "0":
            problems.append(f"opening the dialog put focus on {page.evaluate('() => window.__a11y.describe(document.activeElement)')}, "
                            f"not its first control {stops[0]}")
        page.evaluate("() => { window.__visits.length = 0; }")
        presses, expected = len(stops) - 1, [str(i) for i in range(1, len(stops))]
    else:
        # start from the top of the document, as a freshly loaded page does
        page.evaluate("""() => { document.activeElement && document.activeElement.blur();
            document.body.tabIndex = -1; document.body.focus(); document.body.removeAttribute('tabindex');
            window.__visits.length = 0; }""")
        presses, expected = len(stops), [str(i) for i in range(len(stops))]
    # a date-time field takes a Tab per part (day, month, ...): press until the last control has focus
    last = str(len(stops) - 1)
    for _ in range(presses * 3 + 10):
        if presses == 0 or page.evaluate("() => document.activeElement.getAttribute('data-a11y')") == last:
            break
        page.keyboard.press("Tab")
    visits = page.evaluate("window.__visits")
    got = [v["stop"] for v in visits]
    if got != expected:
        problems.append("Tab order differs from the page's order:\n  expected " +
                        ", ".join(stops[int(i)] for i in expected) + "\n  got      " +
                        ", ".join(v["what"] for v in visits))
    for v in visits:
        if not (v["changed"] and v["shown"]):
            problems.append(f"{v['what']}: no visible focus indicator")
        elif v["ratio"] is not None and v["ratio"] < 3:
            problems.append(f"{v['what']}: focus outline only {v['ratio']:.2f}:1 against its surroundings (< 3:1)")
    return problems


@pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["1366x768", "390x844"])
@pytest.mark.parametrize("name", list(PAGES))
def test_every_main_page_is_named_readable_and_usable_with_the_keyboard(name, size, world, user_page, browser,
                                                                        ui_server):
    path, prepare = PAGES[name]
    if name == "login":  # as a visitor, in a tab of its own
        context = browser.new_context(base_url=ui_server.endpoint, viewport=size)
        context.add_init_script(HELPERS)
        page = context.new_page()
    else:
        context, page = None, user_page
        page.set_viewport_size(size)
    try:
        page.goto(path.format(**world))
        # the page's own autofocus settles first (the login form's user name): Chromium applies or drops it at a
        # rendering update after load, before that update's animation-frame callbacks. On a busy host it came
        # after the blur below: once as the first Tab stop, once as the field's look when unfocused (its ring)
        page.wait_for_load_state("load")
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
        if name == "deployment":
            expect(page.locator("#state [data-state]")).to_have_attribute("data-state", "STARTED")
            expect(page.locator("#urls").get_by_role("link")).to_have_count(1)
            expect(page.locator("#live-text")).to_have_text("live")
            page.evaluate(SETTLED)
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        page.evaluate(WATCH_FOCUS)
        if prepare:
            prepare(page)
        problems = [f"name: {p}" for p in names_missing(page)]
        problems += [f"contrast: {p}" for p in page.evaluate(CONTRAST)]
        problems += [f"keyboard: {p}" for p in keyboard_problems(page)]
        if size == PHONE:
            width = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
            if width[0] > width[1]:
                problems.append(f"layout: the page scrolls sideways on a phone ({width[0]} px wide in {width[1]} px)")
        assert problems == [], "\n".join(problems)
    finally:
        if context is not None:
            context.close()


def test_the_launch_dialog_opens_fills_and_closes_with_the_keyboard_alone(page, world, ui_server):
    login(page, world["name"], world["password"])
    page.goto(f"/ui/apps/{world['app']}")
    launch = page.get_by_role("button", name="Launch")
    # Tab from the top to the Launch button, as a keyboard user gets there
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); }")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "launch-open":
            break
    expect(launch).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Launch Accessible app")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Target engine")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("GREETING (required)")).to_be_focused()
    page.keyboard.type("typed by keyboard")
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("TARGET", exact=True)).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("everyone")
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("Find records by metadata")).to_be_focused()
    page.keyboard.type("name='a record'")
    page.keyboard.press("Enter")  # searches, and does not launch
    found = dialog.get_by_role("list", name="Records found")
    expect(found.get_by_role("checkbox")).to_have_count(1)
    expect(dialog).to_be_visible()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Search")).to_be_focused()
    page.keyboard.press("Tab")
    expect(found.get_by_role("checkbox")).to_be_focused()
    page.keyboard.press("Space")
    expect(found.get_by_role("checkbox")).to_be_checked()
    expect(dialog.get_by_label("GREETING (required)")).to_have_value("typed by keyboard")
    expect(dialog.get_by_label("TARGET", exact=True)).to_have_value("everyone")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(launch).to_be_focused()  # back where the user was
    assert page.url.endswith(f"/ui/apps/{world['app']}")  # nothing was launched
    with user_client(ui_server, world["name"], world["password"]) as api:
        assert api.get("deployment").json()["count"] == 1  # only the fixture's
