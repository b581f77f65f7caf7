"""Every resource type the server knows, by name. Adding a type means adding it here (docs/adding-types.md)."""

from __future__ import annotations

from . import credential, group, infrastructure_service, session, user
from .deployment import Deployment
from .deployment_parameter import DeploymentParameter
from .job import Job
from .module import Module, ModuleApplication, ModuleComponent
from .resource_log import ResourceLog
from .base import ResourceType
from .data_object import DataObject
from .data_object import template_docs as data_object_templates
from .data_record import DataRecord, DataRecordKeyPrefix, DataSet
from .event import Event
from .infrastructure_service_group import InfrastructureServiceGroup
from .templates import template_type

TEMPLATE_TYPES = ("session-template", "user-template", "credential-template", "group-template",
                  "infrastructure-service-template", "data-object-template")


def all_types() -> dict[str, ResourceType]:
    types: list[ResourceType] = [
        session.Session(),
        user.User(),
        user.UserIdentifier(),
        group.Group(),
        credential.Credential(actions=(infrastructure_service.CHECK,)),
        infrastructure_service.InfrastructureService(),
        Module(),
        ModuleComponent(),
        ModuleApplication(),
        Deployment(),
        DeploymentParameter(),
        ResourceLog(),
        DataRecord(),
        DataRecordKeyPrefix(),
        DataSet(),
        DataObject(),
        Event(),
        Job(),
        InfrastructureServiceGroup(),
        *(template_type(name) for name in TEMPLATE_TYPES),
    ]
    return {t.name: t for t in types}


def template_docs() -> list[dict]:
    return [*session.template_docs(), *user.template_docs(), *credential.template_docs(),
            *group.template_docs(), *infrastructure_service.template_docs(), *data_object_templates()]
