from dockyard.core import acl
from dockyard.core.authn import ADMIN, ANON, USER, AuthInfo

ALICE = AuthInfo("user/alice", "user/alice", frozenset({"user/alice", USER, ANON}))
BOB = AuthInfo("user/bob", "user/bob", frozenset({"user/bob", USER, ANON}))
ROOT = AuthInfo("user/root", "user/root", frozenset({"user/root", ADMIN, USER, ANON}))


def test_normalise_expands_implied_rights_adds_admin_and_removes_owners():
    out = acl.normalise({"owners": ["user/alice"], "edit-data": ["user/bob", "user/alice"]})
    assert out["owners"] == ["user/alice"]
    assert out["edit-data"] == [ADMIN, "user/bob"]
    assert out["edit-meta"] == [ADMIN, "user/bob"]
    assert out["view-data"] == [ADMIN, "user/bob"]
    assert out["view-meta"] == [ADMIN, "user/bob"]
    assert out["edit-acl"] == [ADMIN]
    assert out["delete"] == [ADMIN] and out["manage"] == [ADMIN] and out["view-acl"] == [ADMIN]


def test_normalise_drops_empty_lists_and_sorts():
    out = acl.normalise({"owners": ["user/z", "user/a"], "manage": []})
    assert out["owners"] == ["user/a", "user/z"]
    assert set(out) == {"owners", "edit-acl", "edit-data", "edit-meta", "view-acl", "view-data",
                        "view-meta", "delete", "manage"}


def test_every_right_but_manage_implies_view_meta():
    for right in acl.RIGHTS:
        assert ("view-meta" in acl.IMPLIED[right]) == (right != "manage")


def test_owner_and_admin_hold_every_right_others_hold_what_is_granted():
    doc_acl = acl.normalise({"owners": ["user/alice"], "view-data": ["user/bob"]})
    assert acl.rights_of(doc_acl, ALICE) == frozenset(acl.RIGHTS)
    assert acl.rights_of(doc_acl, ROOT) == frozenset(acl.RIGHTS)
    assert acl.rights_of(doc_acl, BOB) == frozenset({"view-data", "view-meta"})
    stranger = AuthInfo("user/eve", "user/eve", frozenset({"user/eve", USER, ANON}))
    assert acl.rights_of(doc_acl, stranger) == frozenset()


def test_viewable_keys_follow_the_view_right():
    doc = {"id": "x/1", "name": "n", "secret-ish": 1, "acl": {"owners": ["user/a"]}}
    assert acl.viewable(doc, frozenset({"view-acl", "view-data", "view-meta"})) == doc
    assert "acl" not in acl.viewable(doc, frozenset({"view-data", "view-meta"}))
    assert acl.viewable(doc, frozenset({"view-meta"})) == {"id": "x/1", "name": "n"}


def test_editable_keys_follow_the_edit_right():
    assert acl.editable_keys(frozenset(acl.RIGHTS)) is None
    data = acl.editable_keys(acl.IMPLIED["edit-data"])
    assert "value" in data and "acl" not in data
    meta = acl.editable_keys(acl.IMPLIED["edit-meta"])
    assert "name" in meta and "value" not in meta
    assert acl.editable_keys(frozenset({"view-meta"})) == frozenset()


def test_collection_rights():
    coll = {"query": [USER], "add": [ADMIN]}
    assert acl.collection_rights(coll, ALICE) == frozenset({"query"})
    assert acl.collection_rights(coll, ROOT) == frozenset(acl.COLLECTION_RIGHTS)
