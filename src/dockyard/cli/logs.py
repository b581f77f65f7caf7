"""The process's log: one handler on stderr, as text or as one JSON object per line (``log-format``).

Dockyard's log calls put their ids in ``extra`` (``job``, ``deployment``, ``status``, ``who`` ...); the JSON
format writes them as fields next to ``time``, ``level``, ``logger`` and ``message``, so that a log shipper
can select on them. Log calls never carry secrets (keys, passwords, tokens), only ids.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from ..core.settings import LOG_FORMATS

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# what every LogRecord has; anything else on a record came from a call's ``extra``
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    """Send every logger's records (uvicorn's included) to stderr in ``fmt``, from ``level`` up."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log-format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
