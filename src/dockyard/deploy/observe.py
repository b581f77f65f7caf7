"""How the engine's view of a deployment's task becomes the deployment's state and parameters."""

from __future__ import annotations

from typing import Any

from ..core.time import now_ts


def task_summary(status: Any) -> dict[str, Any]:
    """A driver's ``TaskStatus`` as the deployment's ``task``: state, restarts, id, name, when checked."""
    out = {"state": status.state, "restarts": status.restart_count, "id": status.task_id[:12],
           "name": status.name, "checked": now_ts()}
    if status.exit_code is not None:
        out["exit-code"] = status.exit_code
    if status.error:
        out["error"] = status.error
    if status.started_at:
        out["started"] = status.started_at
    return out
