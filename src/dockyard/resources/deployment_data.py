"""The data a deployment was launched with: which records, and the deployment's right to read them.

A deployment names records in ``data-records`` (a map keyed by record id, the seed's shape) and/or in
Nuvla's newer ``data`` (``records.records-ids``, ``records.filters``). At start both resolve, as the user
who starts, to one set of records; the deployment (its key) is then granted ``view-data`` on exactly those
records and on the data objects they describe, and ``data-records`` lists them all. Stop and delete take
the grants back.
"""

from __future__ import annotations

from typing import Any

from ..core import acl as acls
from ..core.errors import BadRequest, Forbidden, NotFound
from ..core.time import now_ts
from ..store import filter as cimi_filter
from ..store.db import Tx
from ..store.query import Query
from .base import Ctx

MAX_RECORDS = 10_000


def _filter_records(ctx: Ctx, tx: Tx, spec: Any) -> list[str]:
    if not isinstance(spec, dict) or not isinstance(spec.get("filter"), str):
        raise BadRequest("each data.records.filters entry needs a 'filter'")
    if spec.get("data-type", "data-record") != "data-record":  # the type the filter is about
        return []
    text = f"({spec['filter']})"
    if spec.get("time-start"):
        text += f" and timestamp>='{spec['time-start']}'"
    if spec.get("time-end"):
        text += f" and timestamp<'{spec['time-end']}'"
    claims = None if ctx.authn.is_admin else ctx.authn.claims
    return tx.ids(Query("data-record", cimi_filter.parse(text), claims, limit=MAX_RECORDS))


def selected_ids(ctx: Ctx, tx: Tx, deployment: dict[str, Any]) -> list[str]:
    ids = list((deployment.get("data-records") or {}).keys())
    records = ((deployment.get("data") or {}).get("records") or {})
    ids += list(records.get("records-ids") or [])
    for spec in records.get("filters") or []:
        ids += _filter_records(ctx, tx, spec)
    return list(dict.fromkeys(ids))


def resolve(ctx: Ctx, tx: Tx, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """The selected records, each readable by the user who starts the deployment."""
    out = []
    for rid in selected_ids(ctx, tx, deployment):
        doc = tx.get(rid) if isinstance(rid, str) and rid.startswith("data-record/") else None
        if doc is None:
            raise NotFound.for_resource(str(rid))
        if not acls.has(doc["acl"], ctx.authn, "view-data"):
            raise Forbidden.for_resource(rid)
        out.append(doc)
    return out


def _set_view(tx: Tx, doc: dict[str, Any], principal: str, granted: bool) -> None:
    acl = {k: list(v) for k, v in doc["acl"].items()}
    viewers = set(acl.get("view-data", []))
    if (principal in viewers) == granted:
        return
    viewers = viewers | {principal} if granted else viewers - {principal}
    acl["view-data"] = sorted(viewers)
    tx.replace({**doc, "acl": acls.normalise(acl), "updated": now_ts()})


def objects_of(tx: Tx, record: dict[str, Any]) -> list[dict[str, Any]]:
    bucket, obj = record.get("data:bucket"), record.get("data:object")
    if not isinstance(bucket, str) or not isinstance(obj, str):
        return []
    return [o for o in tx.find_all("data-object", "bucket", bucket) if o.get("object") == obj]


def grant(tx: Tx, deployment_id: str, records: list[dict[str, Any]]) -> None:
    for record in records:
        _set_view(tx, record, deployment_id, True)
        for obj in objects_of(tx, record):
            _set_view(tx, obj, deployment_id, True)


def revoke(tx: Tx, deployment_id: str) -> None:
    for rtype in ("data-record", "data-object"):
        for doc in tx.find_all(rtype, "acl/view-data", deployment_id):
            _set_view(tx, doc, deployment_id, False)
