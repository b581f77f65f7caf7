import uuid

from dockyard.core import ids
from dockyard.core.time import format_ts, normalise_ts, parse_ts

import pytest


def test_deployment_parameter_ids_match_nuvla_test_vectors():
    # vectors from the api-server and the job engine (reference/nuvla-job-engine.md §3)
    assert ids.name_uuid("deployment/abc::ss:state") == "7fdb1c41-8836-341a-8512-5cea8098e6dc"
    assert ids.deployment_parameter_id("deployment/abc", "node", "tcp.80") == \
        "deployment-parameter/f1c7bba3-88a7-3b0e-97dc-4712f80e18c2"
    assert ids.deployment_parameter_id("deployment/abc", None, "hostname") == \
        "deployment-parameter/85d50a6f-c458-363a-9612-f999342d8531"


def test_ids_equal_the_seed_scripts_uuid3_with_an_empty_namespace():
    class NullNameSpace:
        bytes = b""

    text = "deployment/6f1c:6f1c:jupyter-token"
    assert ids.name_uuid(text) == str(uuid.uuid3(NullNameSpace, text))


def test_id_regex():
    assert ids.ID_RE.match("deployment/0b5e-aa")
    assert ids.ID_RE.match("cloud-entry-point")
    assert not ids.ID_RE.match("Deployment/1")
    assert not ids.ID_RE.match("deployment/-x")


def test_timestamps_have_exactly_three_fraction_digits():
    assert normalise_ts("2026-01-02T03:04:05Z") == "2026-01-02T03:04:05.000Z"
    assert normalise_ts("2026-01-02T03:04:05.1234+01:00") == "2026-01-02T02:04:05.123Z"
    assert format_ts(parse_ts("2026-01-02T03:04:05.5Z")) == "2026-01-02T03:04:05.500Z"
    with pytest.raises(ValueError):
        parse_ts("yesterday")
