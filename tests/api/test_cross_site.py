"""An action is never a link: a GET carries the session cookie on a top-level navigation from any site
(SameSite=Lax), so actions answer 405 to it and change nothing; clients (the python-library, the UI) POST."""

from __future__ import annotations

from .helpers import error_of, unique


def _deployment(caller) -> str:
    project = unique("p")
    caller.add("module", {"path": project, "subtype": "project"})
    module = caller.add("module", {"path": f"{project}/app", "subtype": "component", "content": {
        "image": {"image-name": "busybox"}, "author": "tests", "architectures": ["amd64"]}})
    return caller.add("deployment", {"module": {"href": module}})


def test_an_action_by_get_is_refused_and_changes_nothing(alice):
    dep = _deployment(alice)
    resp = alice.get(f"{dep}/force-delete")
    assert error_of(resp) == (405, f"invalid method (get) for /api/{dep}/force-delete: actions need POST")
    assert alice.get(dep).status_code == 200
    assert alice.get(f"{alice.session_id}/switch-group").status_code == 405
    assert alice.post(f"{dep}/force-delete").status_code == 200  # the same action, as clients send it
    assert alice.get(dep).status_code == 404
