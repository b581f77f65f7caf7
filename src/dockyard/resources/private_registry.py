"""Private registries: which registry an app's image comes from, which credential opens it, and who may use it.

An app names its registries and their credentials as Nuvla's do: ``private-registries`` (infrastructure
services of subtype ``registry``) and ``registries-credentials`` (``infrastructure-service-registry``
credentials, or ``""``), by position. A deployment may give its own ``registries-credentials``; without them
it uses the app's.

* **Who may use a credential** (Nuvla's rules): whoever writes an app must be able to see the registries and
  credentials it names (403 otherwise); a deployment uses the app's credentials even when its user cannot
  see them (the vendor rule: the secret never reaches the user), but a credential it adds must be visible to
  its user.
* **Which image is private**: one whose first part (``host[:port]``) is the address of a registered
  ``registry`` service, whoever registered it. Such an image is checked at every start with the
  deployment's credential (a manifest request, as Kubernetes' AlwaysPullImages admission does), so that an
  image another user pulled onto a shared engine does not run for a user without access to it. Images whose
  registry is not registered (built on the engine, or public) start as they always did.
* **Where the password is**: encrypted in the credential; :func:`auth_of` decrypts it at the moment of use
  (a start's pre-flight, the worker's check and pull, a credential's check) and nothing keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import acl as acls
from ..core.errors import BadRequest, Forbidden
from ..drivers import registry
from ..drivers.base import DriverError, RegistryAuth
from ..store.db import Tx
from .base import Ctx, Services

CREDENTIAL = "infrastructure-service-registry"
REGISTRIES_UNRESOLVED = "Private registries can't be resolved!"
CREDENTIALS_UNRESOLVED = "Registries credentials can't be resolved!"


def image_ref(image: dict[str, Any]) -> str:
    """``[registry/][repository/]image-name[:tag]`` from an app's ``image``."""
    ref = "/".join(p for p in (image.get("registry"), image.get("repository")) if p)
    ref = f"{ref}/{image['image-name']}" if ref else image["image-name"]
    return f"{ref}:{image['tag']}" if image.get("tag") else ref


@dataclass(frozen=True)
class RegistryUse:
    """A deployment's image in a registered registry, and the credential chosen for it (None: none given)."""

    image: registry.ImageName
    infra: dict[str, Any]
    cred: dict[str, Any] | None

    @property
    def where(self) -> str:
        return registry.server_address(self.infra["endpoint"])


# -- who may name which credential ----------------------------------------------------------------------------

def check_app(ctx: Ctx, tx: Tx, content: dict[str, Any]) -> None:
    """As Nuvla on an app's add or edit: its registries and credentials exist and its writer can see them."""
    for infra_id in content.get("private-registries") or []:
        infra = tx.get(infra_id)
        if infra is None or infra.get("subtype") != "registry" or not _visible(ctx, infra):
            raise Forbidden(REGISTRIES_UNRESOLVED)
    _check_credentials(ctx, tx, [c for c in content.get("registries-credentials") or [] if c])


def check_deployment(ctx: Ctx, tx: Tx, doc: dict[str, Any]) -> None:
    """As Nuvla: the credentials a deployment adds to its app's must be visible to its user."""
    preselected = set(doc["module"].get("content", {}).get("registries-credentials") or [])
    _check_credentials(ctx, tx, [c for c in doc.get("registries-credentials") or [] if c and c not in preselected])


def _check_credentials(ctx: Ctx, tx: Tx, cred_ids: list[str]) -> None:
    for cred_id in cred_ids:
        cred = tx.get(cred_id)
        if cred is None or cred.get("subtype") != CREDENTIAL or not _visible(ctx, cred):
            raise Forbidden(CREDENTIALS_UNRESOLVED)


def _visible(ctx: Ctx, doc: dict[str, Any]) -> bool:
    return acls.can_view(acls.rights_of(doc["acl"], ctx.authn))


# -- which registry, which credential -------------------------------------------------------------------------

def resolve(tx: Tx, dep: dict[str, Any], ref: str | None = None) -> RegistryUse | None:
    """The registered registry the deployment's image (or ``ref``, an application service's) names and the
    credential to use, or None when the image names no registered registry. Read as the system: the
    deployment's user need not see either."""
    content = dep["module"].get("content") or {}
    if ref is None and "image" not in content:
        return None  # an application: its services' images are given
    image = registry.parse_image(ref or image_ref(content["image"]))
    if not image.registry:
        return None
    infras = [i for i in tx.find_all("infrastructure-service", "subtype", "registry")
              if registry.server_address(i["endpoint"]) == image.registry]
    if not infras:
        return None
    by_id = {i["id"]: i for i in infras}
    given = dep.get("registries-credentials")
    chosen = given if given is not None else content.get("registries-credentials") or []
    for cred_id in chosen:
        cred = tx.get(cred_id) if cred_id else None
        if cred is not None and cred.get("subtype") == CREDENTIAL and cred.get("parent") in by_id:
            return RegistryUse(image, by_id[cred["parent"]], cred)
    named = [by_id[i] for i in content.get("private-registries") or [] if i in by_id]
    return RegistryUse(image, (named or infras)[0], None)


def auth_of(services: Services, cred: dict[str, Any], infra: dict[str, Any]) -> RegistryAuth:
    """The credential as Docker takes it, its password decrypted now, for this use only."""
    return RegistryAuth(username=cred.get("username", ""), password=services.keys.cipher.decrypt(cred["password"]),
                        serveraddress=registry.server_address(infra["endpoint"]))


def verify(services: Services, use: RegistryUse) -> RegistryAuth:
    """The credential to pull with, once the registry said that it opens the image (every start: the image
    may already be on the engine, pulled by someone else). Raises DriverError naming the registry and the
    image otherwise."""
    if use.cred is None:
        raise DriverError(f"Image '{use.image}' is in the private registry {use.where}, and the deployment gives "
                          f"no credential for it (registries-credentials).", reason=registry.REGISTRY_AUTH)
    auth = auth_of(services, use.cred, use.infra)
    registry.check_manifest(use.infra["endpoint"], use.image, auth, timeout=services.settings["registry-timeout"])
    return auth


def preflight(ctx: Ctx, dep: dict[str, Any], images: list[str] | None = None) -> None:
    """Before a start is queued: a 400 naming the image and the registry when the image (or one of an
    application's ``images``) cannot be resolved with the credential given. A registry that cannot be reached
    is left to the worker, which says so."""
    with ctx.services.store.read() as tx:
        uses = [resolve(tx, dep, ref) for ref in (images if images is not None else [None])]
    for use in uses:
        if use is None:
            continue
        try:
            verify(ctx.services, use)
        except DriverError as err:
            if err.recoverable:
                continue
            raise BadRequest(err.message, dep["id"]) from err


def worker_auth(services: Services, dep: dict[str, Any]) -> RegistryAuth | None:
    """The worker's side of :func:`preflight`: the credential to pull with, or None for an image that names
    no registered registry. Raises DriverError (the deployment ends in ERROR with its message)."""
    with services.store.read() as tx:
        use = resolve(tx, dep)
    return None if use is None else verify(services, use)


def worker_auths(services: Services, dep: dict[str, Any], images: list[str]) -> tuple[RegistryAuth, ...]:
    """An application's :func:`worker_auth`: the credentials its services' images need, each checked with its
    registry once per image, for the engine's CLI to pull with."""
    with services.store.read() as tx:
        uses = [use for use in (resolve(tx, dep, ref) for ref in images) if use is not None]
    return tuple(dict.fromkeys(verify(services, use) for use in uses))


__all__ = ["CREDENTIAL", "RegistryUse", "auth_of", "check_app", "check_deployment", "image_ref", "preflight",
           "resolve", "verify", "worker_auth", "worker_auths"]
