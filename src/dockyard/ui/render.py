"""Templates: one Jinja2 environment for the package, with the filters pages share."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse

from ..deploy.lifecycle import BADGES

HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Referrer-Policy": "same-origin",
           # no inline script, nothing from elsewhere: the UI works offline and injected markup cannot run
           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                      "script-src 'self'; frame-ancestors 'none'; form-action 'self'"}


def _ts(value: Any) -> str:
    """A stored timestamp as people read it: ``2024-05-01 14:03:07`` (UTC)."""
    if not isinstance(value, str) or len(value) < 19:
        return "" if value is None else str(value)
    return value[:10] + " " + value[11:19]


def _duration(seconds: Any) -> str:
    if seconds is None:
        return ""
    s = float(seconds)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    minutes, s = divmod(int(s), 60)
    return f"{minutes} min {s} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _badge(state: str | None) -> Markup:
    label, colour = BADGES.get(state or "", ((state or "unknown").lower(), "grey"))
    return Markup('<span class="badge badge-{}" data-state="{}">{}</span>').format(colour, state or "", label)


def _json_attr(value: Any) -> str:
    """A value for a ``data-*`` attribute, read back by JavaScript with JSON.parse (autoescape quotes it)."""
    return json.dumps(value, separators=(",", ":"))


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def make_environment() -> Environment:
    env = Environment(loader=PackageLoader("dockyard.ui", "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(ts=_ts, duration=_duration, badge=_badge, json_attr=_json_attr)
    env.globals["BADGES"] = BADGES
    return env


class Renderer:
    def __init__(self) -> None:
        self.env = make_environment()

    def html(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        body = self.env.get_template(name).render(**values)
        return HTMLResponse(body, status_code=status, headers=HEADERS)
