"""A GET of one document reads the caller's session and the document together (one statement on PostgreSQL,
``Store.prefetched``): what it answers must be what a separate read of each would give, on both databases —
the latest version of the document, the session as it is now (a forged token or a logout refused on the very
next request), one's own session read as a document, a missing document a 404."""

from __future__ import annotations

from .helpers import Caller, error_of, forbidden


def test_a_get_answers_from_the_session_and_document_as_they_are_now(live_server, alice, bob):
    rid = alice.new_doc(name="v1")
    assert alice.get(rid).json()["name"] == "v1"
    assert alice.put(rid, json={"name": "v2"}).status_code == 200
    assert alice.get(rid).json()["name"] == "v2"
    assert error_of(bob.get(rid)) == forbidden(rid)

    # the session is the document: read once to authenticate, then as the document
    own = alice.get(alice.session_id)
    assert own.status_code == 200, own.text
    assert own.json()["id"] == alice.session_id and "token-digest" not in own.json()

    missing = rid.split("/")[0] + "/00000000-0000-4000-8000-000000000000"
    assert error_of(alice.get(missing)) == (404, f"{missing} not found")

    session_uuid, _, token = alice.cookie.partition(".")
    forged = Caller(live_server, cookie=f"{session_uuid}.{'A' * len(token)}")
    assert error_of(forged.get(rid)) == forbidden(rid)

    cookie, sid = alice.cookie, alice.session_id
    assert alice.logout().status_code == 200
    replay = Caller(live_server, cookie=cookie)
    assert error_of(replay.get(rid)) == forbidden(rid)
    assert error_of(replay.get(sid))[0] in (403, 404)
    assert error_of(replay.get(missing)) == (404, f"{missing} not found")
