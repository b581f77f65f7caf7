"""``validate-docker-compose``: is an application's compose file one that Dockyard can run? (Nuvla's
``application_docker_compose_validate``, which runs ``docker compose config -q``.)

Dockyard's own rules first (``deploy.compose.problems``: YAML, services, an image for each, known keys), then
the real compose's (``docker-compose config``, which knows every key of the format). The module gets ``valid``
and ``validation-message`` either way; an invalid file fails the job with the same message, naming the
service or key at fault.
"""

from __future__ import annotations

from typing import Any

from ...core.authn import INTERNAL
from ...deploy import compose as compose_file
from ...drivers import compose
from ...drivers.base import DriverError
from ...resources import crud
from ...resources.base import Ctx
from ...resources.module import split_version
from . import ActionFailed, JobContext, action

# the deployment's variables, so that a file interpolating them is read as it will be at a start
PLACEHOLDERS = ("NUVLA_ENDPOINT", "NUVLA_DEPLOYMENT_ID", "NUVLA_DEPLOYMENT_UUID", "NUVLA_API_KEY",
                "NUVLA_API_SECRET", "DATE_TIME", "TIMESTAMP")


@action("validate-docker-compose")
def validate_docker_compose(ctx: JobContext) -> str:
    module_type = ctx.services.types["module"]
    with ctx.services.store.read() as tx:
        module = module_type.load(tx, ctx.target)
    if module is None:
        raise ActionFailed(f"{ctx.target} no longer exists")
    if module.get("subtype") != "application":
        raise ActionFailed(f"{ctx.target} is a {module.get('subtype')}, not an application")
    found = problems(module.get("content") or {}, module.get("compatibility") or "swarm")
    message = "\n".join(found) if found else "valid: services " + ", ".join(
        compose_file.services_of(module["content"]["docker-compose"]))
    _record(ctx, not found, message)
    if found:
        raise ActionFailed(f"invalid compose file: {message}", reason="invalid-spec")
    return message


def problems(content: dict[str, Any], compatibility: str) -> list[str]:
    text = content.get("docker-compose") or ""
    found = compose_file.problems(text, compatibility) or \
        compose_file.readiness_problems(text, content.get("readiness"))
    if found:
        return found
    env = [(name, "x") for name in PLACEHOLDERS]
    env += [(v["name"], v.get("value") or "x") for v in content.get("environmental-variables") or []]
    files = tuple((f["file-name"], f["file-content"]) for f in content.get("files") or [])
    try:
        compose.check(text, files, tuple(env))
    except DriverError as err:
        if err.reason != "invalid-spec":
            raise ActionFailed.of(err) from err
        return [err.message]
    return []


def _record(ctx: JobContext, valid: bool, message: str) -> None:
    module_type = ctx.services.types["module"]
    with ctx.services.store.write() as tx:
        current = tx.get(split_version(ctx.target)[0], for_update=True)
        if current is not None:
            crud.update(Ctx(ctx.services, INTERNAL), tx, module_type, current,
                        {**current, "valid": valid, "validation-message": message})
