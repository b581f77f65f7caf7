"""Who may see and change what, over HTTP against a live server (SQLite and PostgreSQL).

A user's documents are invisible to others — in retrieve, edit, delete, actions and every kind of search
(filtered, unfiltered, count-only, aggregations) — unless an ACL shares them; sessions and API keys end
on the very next request once revoked; client-supplied identity headers are ignored.
"""

from __future__ import annotations

import time

from .helpers import (
    COOKIE, DOC_TYPE, Caller, anonymous, create_user, error_of, forbidden, make_user, new_group, relogin,
    set_cookie_attributes, unique,
)


def _stored(root: Caller, rid: str) -> dict:
    resp = root.get(rid)
    assert resp.status_code == 200, resp.text
    return resp.json()


# -- private by default --------------------------------------------------------------------------------

def test_another_users_document_cannot_be_read_edited_or_deleted(alice, bob, root):
    rid = alice.new_doc(name="alice's", tags=["private"])
    before = _stored(root, rid)

    assert error_of(bob.get(rid)) == forbidden(rid)
    assert error_of(bob.get(rid, params={"select": "name"})) == forbidden(rid)
    assert error_of(bob.put(rid, json={"name": "bob was here"})) == forbidden(rid)
    assert error_of(bob.put(rid, json=[{"op": "replace", "path": "/name", "value": "bob"}],
                            headers={"content-type": "application/json-patch+json"})) == forbidden(rid)
    assert error_of(bob.put(rid, params={"select": "description"}, json={})) == forbidden(rid)
    assert error_of(bob.delete(rid)) == forbidden(rid)

    assert _stored(root, rid) == before
    assert alice.get(rid).json()["name"] == "alice's"


def test_another_users_session_cannot_be_read_acted_on_or_deleted(alice, bob):
    sid = alice.session_id
    assert error_of(bob.get(sid)) == forbidden(sid)
    assert error_of(bob.post(f"{sid}/get-groups")) == forbidden(sid)
    assert error_of(bob.post(f"{sid}/switch-group", json={"claim": bob.user_id})) == forbidden(sid)
    assert error_of(bob.delete(sid)) == forbidden(sid)
    # alice's session is intact
    assert alice.current_session()["count"] == 1
    assert alice.get(alice.user_id).status_code == 200


def test_another_users_account_and_keys_cannot_be_read(alice, bob):
    key, _ = alice.new_key()
    for rid in (alice.user_id, key):
        assert error_of(bob.get(rid)) == forbidden(rid)
        assert error_of(bob.put(rid, json={"description": "mine now"})) == forbidden(rid)
        assert error_of(bob.delete(rid)) == forbidden(rid)
    # a user sees exactly one user: themselves
    assert bob.ids("user") == {bob.user_id}
    assert bob.count("user") == 1
    assert bob.count("user", f"id='{alice.user_id}'") == 0
    assert key not in bob.ids("credential")
    assert bob.count("credential", f"id='{key}'") == 0
    assert bob.count("credential", f"claims/identity='{alice.user_id}'") == 0


def test_searches_and_counts_do_not_reveal_other_users_documents(alice, bob):
    tag = unique("tag")
    alice_docs = {alice.new_doc(name=f"a{i}", tags=[tag, "shared-tag"]) for i in range(3)}
    bob_doc = bob.new_doc(name="b0", tags=[tag])

    # unfiltered: bob is a fresh user, so he sees exactly his own document
    assert bob.ids(DOC_TYPE) == {bob_doc}
    assert bob.count(DOC_TYPE) == 1
    # filtered, on the documents' own attributes and on their ACL
    assert bob.ids(DOC_TYPE, f"tags='{tag}'") == {bob_doc}
    assert bob.count(DOC_TYPE, f"tags='{tag}'") == 1
    assert bob.count(DOC_TYPE, "tags='shared-tag'") == 0
    assert bob.count(DOC_TYPE, f"acl/owners='{alice.user_id}'") == 0
    assert bob.count(DOC_TYPE, f"created-by='{alice.user_id}'") == 0
    assert bob.count(DOC_TYPE, "name^='a' or name^='b'") == 1
    for rid in alice_docs:
        assert bob.count(DOC_TYPE, f"id='{rid}'") == 0
    # paging and ordering never reach past the ACL
    page = bob.search(DOC_TYPE, first=1, last=100, orderby="name:asc").json()
    assert page["count"] == 1 and [r["id"] for r in page["resources"]] == [bob_doc]
    # aggregations count only what bob may see
    aggs = bob.search(DOC_TYPE, last=0, aggregation=["terms:tags", "value_count:id", "terms:name",
                                                     "cardinality:created-by"]).json()
    assert aggs["count"] == 1
    buckets = {b["key"]: b["doc_count"] for b in aggs["aggregations"]["terms:tags"]["buckets"]}
    assert buckets == {tag: 1}
    assert aggs["aggregations"]["value_count:id"] == {"value": 1}
    assert [b["key"] for b in aggs["aggregations"]["terms:name"]["buckets"]] == ["b0"]
    assert aggs["aggregations"]["cardinality:created-by"] == {"value": 1}
    filtered = bob.search(DOC_TYPE, filter=f"tags='{tag}'", last=0, aggregation="value_count:id").json()
    assert filtered["count"] == 1 and filtered["aggregations"]["value_count:id"] == {"value": 1}
    # the same searches by PUT with a form body (how the python client searches)
    form = bob.put(DOC_TYPE, data={"filter": f"tags='{tag}'", "last": "0", "aggregation": "terms:tags"}).json()
    assert form["count"] == 1
    assert {b["key"] for b in form["aggregations"]["terms:tags"]["buckets"]} == {tag}
    # alice sees her three
    assert alice.count(DOC_TYPE, f"tags='{tag}'") == 3
    # nor do other collections give them away: the audit events of alice's adds, her private group
    some = next(iter(alice_docs))
    assert alice.count("event", f"content/resource/href='{some}'") == 1
    assert bob.count("event", f"content/resource/href='{some}'") == 0
    assert bob.count("event", f"authn-info/user-id='{alice.user_id}'") == 0
    gid = new_group(alice, [alice.user_id])
    assert bob.count("group", f"id='{gid}'") == 0 and gid not in bob.ids("group")
    assert error_of(bob.get(gid)) == forbidden(gid)


def test_bulk_delete_does_not_touch_other_users_documents(alice, bob, root):
    tag = unique("tag")
    theirs = alice.new_doc(tags=[tag])
    mine = bob.new_doc(tags=[tag])
    resp = bob.delete(DOC_TYPE, params={"filter": f"tags='{tag}'"}, headers={"bulk": "yes"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["deleted"] == 1
    assert root.get(theirs).status_code == 200
    assert root.get(mine).status_code == 404


# -- sharing through the ACL ---------------------------------------------------------------------------

def test_view_data_share_can_read_and_search_but_not_edit_or_see_the_acl(alice, bob, root):
    tag = unique("tag")
    rid = alice.new_doc(name="shared", tags=[tag], documentation="https://example.org/doc",
                        acl={"owners": [alice.user_id], "view-data": [bob.user_id]})
    before = _stored(root, rid)

    doc = bob.get(rid).json()
    assert doc["name"] == "shared" and doc["documentation"] == "https://example.org/doc"
    assert "acl" not in doc
    assert doc["operations"] == []
    found = bob.search(DOC_TYPE, filter=f"tags='{tag}'").json()
    assert found["count"] == 1
    assert [r["id"] for r in found["resources"]] == [rid]
    assert "acl" not in found["resources"][0]
    assert found["resources"][0]["operations"] == []
    assert bob.count(DOC_TYPE, f"tags='{tag}'") == 1
    # even selecting the acl explicitly does not show it
    assert "acl" not in bob.get(rid, params={"select": "acl"}).json()
    assert all("acl" not in r for r in bob.search(DOC_TYPE, filter=f"id='{rid}'", select="acl,name")
               .json()["resources"])

    assert error_of(bob.put(rid, json={"name": "edited by bob"})) == forbidden(rid)
    assert error_of(bob.delete(rid)) == forbidden(rid)
    assert _stored(root, rid) == before


def test_edit_data_share_can_edit_data_but_not_the_acl(alice, bob, root):
    rid = alice.new_doc(name="shared", acl={"owners": [alice.user_id], "edit-data": [bob.user_id]})
    acl_before = _stored(root, rid)["acl"]

    doc = bob.get(rid).json()
    assert "acl" not in doc
    assert doc["operations"] == [{"rel": "edit", "href": rid}]

    edited = bob.put(rid, json={"name": "renamed by bob", "description": "new"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["name"] == "renamed by bob" and "acl" not in edited.json()
    # an ACL in bob's edit is ignored, alone or beside other changes
    grab = {"owners": [bob.user_id]}
    assert bob.put(rid, json={"acl": grab}).status_code == 200
    assert bob.put(rid, json={"acl": grab, "name": "again"}).json()["name"] == "again"
    patch = bob.put(rid, json=[{"op": "add", "path": "/acl", "value": grab}],
                    headers={"content-type": "application/json-patch+json"})
    assert patch.status_code == 200, patch.text

    stored = _stored(root, rid)
    assert stored["acl"] == acl_before
    assert stored["name"] == "again" and stored["description"] == "new"
    assert error_of(bob.delete(rid)) == forbidden(rid)
    assert root.get(rid).status_code == 200


def test_view_meta_share_sees_only_metadata(alice, bob):
    tag = unique("tag")
    rid = alice.new_doc(name="meta", tags=[tag], documentation="https://example.org/doc",
                        acl={"owners": [alice.user_id], "view-meta": [bob.user_id]})
    metadata = {"id", "resource-type", "created", "updated", "name", "description", "tags", "subtype",
                "parent", "resource-metadata", "operations"}
    doc = bob.get(rid).json()
    assert set(doc) <= metadata
    assert {"id", "name", "tags", "created", "updated", "resource-type"} <= set(doc)
    assert "documentation" not in doc and "acl" not in doc and "created-by" not in doc
    found = bob.search(DOC_TYPE, filter=f"tags='{tag}'").json()
    assert found["count"] == 1
    assert set(found["resources"][0]) <= metadata
    assert "documentation" not in found["resources"][0]
    assert error_of(bob.put(rid, json={"name": "x"})) == forbidden(rid)
    assert error_of(bob.delete(rid)) == forbidden(rid)


def test_group_share_is_visible_to_members_only(live_server, alice, bob, root):
    carol = make_user(live_server, root)
    gid = new_group(alice, [bob.user_id])
    tag = unique("tag")
    rid = alice.new_doc(name="team doc", tags=[tag], acl={"owners": [alice.user_id], "view-data": [gid]})

    member = relogin(bob)  # group claims are taken when the session opens
    assert member.get(rid).json()["name"] == "team doc"
    assert member.count(DOC_TYPE, f"tags='{tag}'") == 1
    assert error_of(member.put(rid, json={"name": "x"})) == forbidden(rid)

    assert error_of(carol.get(rid)) == forbidden(rid)
    assert carol.count(DOC_TYPE, f"tags='{tag}'") == 0
    assert carol.count(DOC_TYPE, f"acl/view-data='{gid}'") == 0


def test_a_group_cannot_borrow_the_claims_of_a_group_the_caller_does_not_control(live_server, alice, bob, root):
    """Members of a group log in with its parents' claims: naming a parent needs edit rights on it."""
    bobs_group = new_group(bob, [bob.user_id])
    for parent in ("group/nuvla-admin", "group/nuvla-user", bobs_group):
        before = root.count("group")
        ident = unique("sub")
        resp = alice.post("group", json={"template": {"href": "group-template/generic", "group-identifier": ident},
                                         "users": [alice.user_id], "parents": [parent]})
        assert error_of(resp) == forbidden(parent)
        assert root.count("group") == before
        assert error_of(root.get(f"group/{ident}")) == (404, f"group/{ident} not found")
    own = new_group(alice, [alice.user_id])
    before = root.get(own).json()
    assert error_of(alice.put(own, json={"parents": ["group/nuvla-admin"]})) == forbidden("group/nuvla-admin")
    assert root.get(own).json() == before

    fresh = relogin(alice)
    roles = fresh.current_session()["resources"][0]["roles"].split()
    assert "group/nuvla-admin" not in roles and own in roles
    assert fresh.ids("user") == {alice.user_id}

    # a parent the caller controls is fine, and its members act with the parent's claims
    child = alice.add("group", {"template": {"href": "group-template/generic",
                                             "group-identifier": unique("child")},
                                "users": [bob.user_id], "parents": [own]})
    assert root.get(child).json()["parents"] == [own]
    rid = alice.new_doc(acl={"owners": [alice.user_id], "view-data": [own]})
    assert relogin(bob).get(rid).status_code == 200
    # and the admin may name any parent
    assert root.put(child, json={"parents": [own, bobs_group]}).status_code == 200


def test_admin_sees_and_edits_everything(alice, root):
    tag = unique("tag")
    rid = alice.new_doc(name="alice's", tags=[tag])
    doc = root.get(rid).json()
    assert doc["acl"]["owners"] == [alice.user_id]
    assert {"rel": "edit", "href": rid} in doc["operations"]
    assert {"rel": "delete", "href": rid} in doc["operations"]
    assert root.count(DOC_TYPE, f"tags='{tag}'") == 1
    assert root.put(rid, json={"name": "by admin"}).json()["name"] == "by admin"
    assert alice.get(rid).json()["name"] == "by admin"
    assert root.get(alice.user_id).status_code == 200
    assert alice.user_id in root.ids("user")
    assert root.delete(rid).status_code == 200
    assert alice.get(rid).status_code == 404


def test_anonymous_callers(live_server, alice):
    anon = anonymous(live_server)
    for method in ("GET", "PUT"):
        resp = anon.request(method, "session")
        assert resp.status_code == 200, resp.text
        assert resp.json()["count"] == 0 and resp.json()["resources"] == []
    assert anon.count("session-template") == 2
    assert anon.get("session-template/password").status_code == 200
    assert anon.get("cloud-entry-point").status_code == 200
    for rtype in ("user", "credential", DOC_TYPE, "group", "event"):
        assert error_of(anon.get(rtype)) == (403, "credentials required")
        assert error_of(anon.get(rtype, params={"last": 0})) == (403, "credentials required")
    assert error_of(anon.get(alice.user_id)) == forbidden(alice.user_id)
    rid = alice.new_doc()
    assert error_of(anon.get(rid)) == forbidden(rid)
    assert error_of(anon.post(DOC_TYPE, json={"name": "anon"})) == (403, "credentials required")
    assert error_of(anon.post("credential", json={"template": {"href": "credential-template/generate-api-key"}})) \
        == (403, "credentials required")


# -- revocation ----------------------------------------------------------------------------------------

def test_logged_out_cookie_is_refused_on_the_next_request(live_server, alice):
    cookie = alice.cookie
    assert cookie
    assert Caller(live_server, cookie=cookie).get(alice.user_id).status_code == 200

    resp = alice.logout()
    assert resp.status_code == 200
    sid = alice.session_id
    assert resp.json() == {"status": 200, "message": f"{sid} deleted", "resource-id": sid}
    assert "max-age" in set_cookie_attributes(resp)

    replay = Caller(live_server, cookie=cookie)
    assert error_of(replay.get(alice.user_id)) == forbidden(alice.user_id)
    assert replay.current_session()["count"] == 0
    assert error_of(replay.get(DOC_TYPE)) == (403, "credentials required")


def test_deleting_an_api_key_ends_its_sessions(live_server, alice):
    key, secret = alice.new_key()
    keyed = Caller(live_server)
    assert keyed.login_key(key, secret).status_code == 201
    assert keyed.get(alice.user_id).status_code == 200
    password_session = alice.get(alice.user_id)
    assert password_session.status_code == 200

    assert alice.delete(key).status_code == 200
    assert error_of(keyed.get(alice.user_id)) == forbidden(alice.user_id)
    assert keyed.current_session()["count"] == 0
    assert error_of(Caller(live_server).login_key(key, secret)) == (403, f"invalid credentials for '{key}'")
    # the password session that deleted the key goes on
    assert alice.get(alice.user_id).status_code == 200


def test_deleting_a_user_ends_their_sessions_and_keys(live_server, root, alice):
    carol = make_user(live_server, root)
    key, secret = carol.new_key()
    keyed = Caller(live_server)
    assert keyed.login_key(key, secret).status_code == 201
    shared = alice.new_doc(acl={"owners": [alice.user_id], "view-data": [carol.user_id]})
    assert carol.get(shared).status_code == 200 and keyed.get(shared).status_code == 200
    sessions = [carol.session_id, keyed.session_id]

    assert root.delete(carol.user_id).status_code == 200

    for caller in (carol, keyed):
        assert error_of(caller.get(shared)) == forbidden(shared)
        assert caller.current_session()["count"] == 0
    for sid in sessions:
        assert error_of(root.get(sid)) == (404, f"{sid} not found")
    assert error_of(root.get(key)) == (404, f"{key} not found")
    assert root.count("credential", f"claims/identity='{carol.user_id}'") == 0
    assert root.count("credential", f"parent='{carol.user_id}'") == 0
    assert error_of(Caller(live_server).login_key(key, secret)) == (403, f"invalid credentials for '{key}'")
    assert Caller(live_server).login_password(carol.username, carol.password).status_code == 403


def test_expired_api_key_is_refused(live_server, alice):
    key, secret = alice.new_key(ttl=1)
    assert "expiry" in alice.get(key).json()
    time.sleep(1.5)
    assert error_of(Caller(live_server).login_key(key, secret)) == (403, f"invalid credentials for '{key}'")
    # a key without ttl keeps working
    forever, forever_secret = alice.new_key(ttl=0)
    assert "expiry" not in alice.get(forever).json()
    assert Caller(live_server).login_key(forever, forever_secret).status_code == 201


# -- API key claims --------------------------------------------------------------------------------------

def test_api_key_carries_a_snapshot_of_its_creators_claims(live_server, alice, bob):
    early_key, early_secret = bob.new_key()
    claims = bob.get(early_key).json()["claims"]
    assert claims["identity"] == bob.user_id
    assert not any(r.startswith("session/") for r in claims["roles"])
    assert "group/nuvla-user" in claims["roles"] and "group/nuvla-admin" not in claims["roles"]

    gid = new_group(alice, [bob.user_id])
    rid = alice.new_doc(acl={"owners": [alice.user_id], "view-data": [gid]})
    member = relogin(bob)
    late_key, late_secret = member.new_key()
    assert gid in member.get(late_key).json()["claims"]["roles"]

    early, late = Caller(live_server), Caller(live_server)
    assert early.login_key(early_key, early_secret).status_code == 201
    assert late.login_key(late_key, late_secret).status_code == 201
    # the early key was made before bob joined the group: it never gains the group
    assert error_of(early.get(rid)) == forbidden(rid)
    assert late.get(rid).status_code == 200
    # what is created through a key is owned by the key's identity
    made = late.new_doc()
    assert bob.get(made).json()["acl"]["owners"] == [bob.user_id]


def test_non_admin_cannot_escalate_through_api_key_claims(live_server, alice, root):
    admin_claims = {"identity": "group/nuvla-admin", "roles": ["group/nuvla-admin", "group/nuvla-user"]}
    key, secret = alice.new_key(claims=admin_claims)
    resp = alice.post("credential", json={
        "template": {"href": "credential-template/generate-api-key", "ttl": 0, "claims": admin_claims,
                     "identity": "group/nuvla-admin", "roles": ["group/nuvla-admin"]},
        "claims": admin_claims})
    assert resp.status_code == 201, resp.text
    keys = [key, resp.json()["resource-id"]]
    secrets = [secret, resp.json()["secret-key"]]

    for k in keys:
        claims = alice.get(k).json()["claims"]
        assert claims["identity"] == alice.user_id
        assert "group/nuvla-admin" not in claims["roles"]
        edited = alice.put(k, json={"claims": admin_claims, "description": "tried"})
        assert edited.status_code == 200, edited.text
        assert edited.json()["claims"] == claims and edited.json()["description"] == "tried"
        assert alice.put(k, json=[{"op": "replace", "path": "/claims", "value": admin_claims}],
                         headers={"content-type": "application/json-patch+json"}).status_code == 200
        assert _stored(root, k)["claims"] == claims

    for k, s in zip(keys, secrets):
        keyed = Caller(live_server)
        assert keyed.login_key(k, s).status_code == 201
        assert keyed.ids("user") == {alice.user_id}
        assert error_of(keyed.get(root.session_id)) == forbidden(root.session_id)
        assert error_of(keyed.post("user", json={"template": {"href": "user-template/username-password",
                                                              "username": unique("x"),
                                                              "password": "long-enough"}})) \
            == (403, "credentials required")


def test_secrets_are_never_returned_nor_searchable(live_server, alice, root):
    key, _ = alice.new_key()
    password_cred = root.get(alice.user_id).json()["credential-password"]
    for caller in (alice, root):
        assert "digest" not in caller.get(key).json()
        for attr in ("digest", "hash"):
            assert caller.count("credential", f"{attr}!=null") == 0
            assert caller.search("credential", last=0, aggregation=f"terms:{attr}").json()[
                "aggregations"][f"terms:{attr}"]["buckets"] == []
            assert all(attr not in r for r in caller.search("credential", select=f"id,{attr}").json()["resources"])
        assert caller.count("session", "token-digest!=null") == 0
        assert "token-digest" not in caller.get(caller.session_id).json()
    assert "hash" not in root.get(password_cred).json()
    # the owner of the password sees only its metadata, and cannot change it
    own = alice.get(password_cred).json()
    assert "hash" not in own and "claims" not in own
    assert error_of(alice.put(password_cred, json={"description": "x"})) == forbidden(password_cred)
    assert error_of(alice.delete(password_cred)) == forbidden(password_cred)


# -- headers a client must not be trusted with -----------------------------------------------------------

def test_nuvla_authn_info_header_from_a_client_is_ignored(live_server, root, alice, bob):
    forged = {"nuvla-authn-info": "group/nuvla-admin group/nuvla-admin"}
    rid = alice.new_doc()
    anon = anonymous(live_server, headers=forged)
    assert anon.current_session()["count"] == 0
    assert error_of(anon.get(rid)) == forbidden(rid)
    assert error_of(anon.get(alice.user_id)) == forbidden(alice.user_id)
    assert error_of(anon.get("user")) == (403, "credentials required")
    assert error_of(anon.post(DOC_TYPE, json={"name": "forged"})) == (403, "credentials required")
    assert error_of(anon.delete(rid)) == forbidden(rid)
    assert anon.count("session-template") == 2

    # a logged-in user gains nothing either
    for header in (forged["nuvla-authn-info"], f"{alice.user_id} {alice.user_id} group/nuvla-user"):
        resp = bob.get(rid, headers={"nuvla-authn-info": header})
        assert error_of(resp) == forbidden(rid)
        assert bob.count(DOC_TYPE, f"id='{rid}'") == 0
        resp = bob.get(DOC_TYPE, params={"filter": f"id='{rid}'", "last": 0}, headers={"nuvla-authn-info": header})
        assert resp.json()["count"] == 0
    assert root.get(rid).status_code == 200


def test_secure_cookie_attribute_only_behind_https(live_server, root):
    uid, username, password = create_user(root)
    plain = Caller(live_server)
    resp = plain.login_password(username, password)
    assert resp.status_code == 201
    attrs = set_cookie_attributes(resp)
    assert "secure" not in attrs and "httponly" in attrs and "path" in attrs
    assert "secure" not in set_cookie_attributes(plain.logout())

    https = Caller(live_server, headers={"x-forwarded-proto": "https"})
    resp = https.login_password(username, password)
    assert resp.status_code == 201
    assert "secure" in set_cookie_attributes(resp)
    # a Secure cookie is not sent back over plain http by a client jar: send it by hand
    logout = https.delete(https.session_id, headers={"cookie": f"{COOKIE}={https.cookie}"})
    assert logout.status_code == 200, logout.text
    assert "secure" in set_cookie_attributes(logout)
