"""Who is calling: the identity and claims a request acts with."""

from __future__ import annotations

from dataclasses import dataclass, field

ADMIN = "group/nuvla-admin"
USER = "group/nuvla-user"
ANON = "group/nuvla-anon"
DEPLOYMENT = "group/nuvla-deployment"  # the role of a deployment's own API key
# created at start so that nobody can create them and hand themselves their claims
BUILTIN_GROUPS = (ADMIN, USER, ANON, DEPLOYMENT, "group/nuvla-nuvlabox", "group/nuvla-vpn")


@dataclass(frozen=True)
class AuthInfo:
    user_id: str | None
    active_claim: str | None
    claims: frozenset[str] = field(default_factory=frozenset)
    session_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.claims

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    def as_doc(self) -> dict[str, object]:
        return {
            "user-id": self.user_id or ANON,
            "active-claim": self.active_claim or ANON,
            "claims": sorted(self.claims),
        }


ANONYMOUS = AuthInfo(None, None, frozenset({ANON}))
INTERNAL = AuthInfo("internal", ADMIN, frozenset({ADMIN, USER, ANON}))


def for_identity(identity: str, roles: list[str] | frozenset[str], session_id: str | None = None,
                 active_claim: str | None = None) -> AuthInfo:
    claims = set(roles) | {identity, ANON}
    if session_id:
        claims.add(session_id)
    return AuthInfo(identity, active_claim or identity, frozenset(claims), session_id)
