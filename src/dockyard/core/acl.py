"""Access control lists: rights, their implications, normalised storage, and the checks.

A resource ACL maps each right to a list of principals; ``owners`` hold every right. Rights imply others
(``edit-acl`` ⇒ ``edit-data``, ``delete``, ``manage``, ``view-acl``; ``edit-data`` ⇒ ``edit-meta``,
``view-data``; ``edit-meta`` ⇒ ``view-meta``; ``delete`` ⇒ ``view-meta``; ``view-acl`` ⇒ ``view-data``;
``view-data`` ⇒ ``view-meta``). Stored ACLs are normalised as Nuvla stores them: ``group/nuvla-admin`` in
``edit-acl``, every implied right spelled out, owners removed from the right lists, empty lists dropped,
lists sorted. So "can view" is one membership test on ``owners`` ∪ ``view-meta``, which the store runs in SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .authn import ADMIN, AuthInfo

RIGHTS = ("view-meta", "view-data", "view-acl", "edit-meta", "edit-data", "edit-acl", "manage", "delete")
COLLECTION_RIGHTS = ("query", "add", "bulk-delete", "bulk-action")

_IMPLIES: dict[str, tuple[str, ...]] = {
    "edit-acl": ("edit-data", "delete", "manage", "view-acl"),
    "edit-data": ("edit-meta", "view-data"),
    "edit-meta": ("view-meta",),
    "delete": ("view-meta",),
    "view-acl": ("view-data",),
    "view-data": ("view-meta",),
    "manage": (),
    "view-meta": (),
}


def _closure(right: str) -> set[str]:
    out = {right}
    for child in _IMPLIES[right]:
        out |= _closure(child)
    return out


# rights implied by holding a given right, itself included
IMPLIED = {right: frozenset(_closure(right)) for right in RIGHTS}
# for each right, every right that grants it
GRANTED_BY = {right: frozenset(r for r in RIGHTS if right in IMPLIED[r]) for right in RIGHTS}

METADATA_KEYS = frozenset(
    {"id", "resource-type", "created", "updated", "name", "description", "tags", "subtype", "parent",
     "resource-metadata", "operations"}
)


def normalise(acl: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    owners = sorted(set(acl.get("owners", ())))
    expanded: dict[str, set[str]] = {right: set() for right in RIGHTS}
    for right in RIGHTS:
        for principal in acl.get(right, ()):
            for implied in IMPLIED[right]:
                expanded[implied].add(principal)
    for implied in IMPLIED["edit-acl"]:
        expanded[implied].add(ADMIN)
    out: dict[str, list[str]] = {"owners": owners}
    for right in RIGHTS:
        principals = expanded[right] - set(owners)
        if principals:
            out[right] = sorted(principals)
    return out


def rights_of(acl: Mapping[str, Iterable[str]], authn: AuthInfo) -> frozenset[str]:
    """Every right the caller holds on a resource with this ACL (expanded, so implications hold)."""
    claims = authn.claims
    if authn.is_admin or claims.intersection(acl.get("owners", ())):
        return frozenset(RIGHTS)
    held: set[str] = set()
    for right in RIGHTS:
        if claims.intersection(acl.get(right, ())):
            held |= IMPLIED[right]
    return frozenset(held)


def has(acl: Mapping[str, Iterable[str]], authn: AuthInfo, right: str) -> bool:
    return right in rights_of(acl, authn)


def collection_allows(collection_acl: Mapping[str, Iterable[str]], authn: AuthInfo, right: str) -> bool:
    if authn.is_admin:
        return True
    return bool(authn.claims.intersection(collection_acl.get(right, ())))


def collection_rights(collection_acl: Mapping[str, Iterable[str]], authn: AuthInfo) -> frozenset[str]:
    return frozenset(r for r in COLLECTION_RIGHTS if collection_allows(collection_acl, authn, r))


def can_view(rights: frozenset[str]) -> bool:
    return "view-meta" in rights


def can_edit(rights: frozenset[str]) -> bool:
    return "edit-meta" in rights


def viewable(doc: dict, rights: frozenset[str]) -> dict:
    """The part of a document the caller may see: everything, everything but the ACL, or the metadata."""
    if "view-acl" in rights:
        return doc
    if "view-data" in rights:
        return {k: v for k, v in doc.items() if k != "acl"}
    return {k: v for k, v in doc.items() if k in METADATA_KEYS}


def editable_keys(rights: frozenset[str]) -> frozenset[str] | None:
    """Keys the caller may change; ``None`` means all of them."""
    if "edit-acl" in rights:
        return None
    if "edit-data" in rights:
        return _ALL_BUT_ACL
    if "edit-meta" in rights:
        return METADATA_KEYS
    return frozenset()


class _AllBut(frozenset):
    """Membership in "every key but these"."""

    def __contains__(self, key: object) -> bool:  # type: ignore[override]
        return not frozenset.__contains__(self, key)


_ALL_BUT_ACL = _AllBut({"acl"})
