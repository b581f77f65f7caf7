"""Registering a registry and its credentials through the real nuvla-api client, as a user would."""

from __future__ import annotations

import time

from nuvla.api import Api

REGISTRY_TEMPLATE = "credential-template/infrastructure-service-registry"


def add_registry(api: Api, endpoint: str, name: str = "private registry") -> str:
    return api.add("infrastructure-service", {"template": {
        "href": "infrastructure-service-template/generic", "subtype": "registry", "endpoint": endpoint},
        "name": name}).data["resource-id"]


def add_credential(api: Api, registry_id: str, username: str, password: str, name: str = "pusher") -> str:
    return api.add("credential", {"template": {"href": REGISTRY_TEMPLATE, "parent": registry_id,
                                               "username": username, "password": password},
                                  "name": name}).data["resource-id"]


def wait_job(api: Api, job_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    job = api.get(job_id).data
    while job["state"] not in ("SUCCESS", "FAILED", "CANCELED") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = api.get(job_id).data
    return job


def check(api: Api, cred_id: str) -> dict:
    """The credential's ``check`` action, to its job's end."""
    return wait_job(api, api.operation(api.get(cred_id), "check").data["location"])
