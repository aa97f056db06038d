"""Model versions over the management API and in decisions, on PostgreSQL: registered,
served, refused by field, audited, and named by every decision on the on-device rung."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.test import Client

from access.api_keys import api_key_create
from rollout.models import AuditEntry, Environment, FlagState, MetricBucket, ModelVersion
from tests.support.demo import load_demo
from tests.support.telemetry import _telemetry_isolation  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/flags/smart-compose/models"
STATE = "/api/v1/flags/smart-compose/environments/production"
HIGH_END = {"memoryGb": 16, "benchmarkMs": 10, "webgpu": True, "rttMs": 50, "cores": 12}
V4 = {
    "name": "tiny-reply",
    "version": "4.0.0",
    "url": "https://models.example.com/tiny-reply/4.0.0.onnx",
    "sizeBytes": 50_000_000,
    "sha256": "4" * 64,
    "format": "onnx",
    "requirements": [{"contextName": "memoryGb", "operator": "NUM_GTE", "value": "8"}],
    "delta": {
        "from": "3.0.0",
        "url": "https://models.example.com/tiny-reply/3-4.delta",
        "sizeBytes": 4_000_000,
        "sha256": "5" * 64,
    },
}


@pytest.fixture
def key(publish) -> str:
    load_demo(publish)
    environment = Environment.objects.get(key="production")
    return publish(lambda: api_key_create(environment=environment, scope="client", name="t"))[1]


def _post(client: Client, body: Any) -> Any:
    return client.post(MODELS, json.dumps(body), content_type="application/json")


def _patch(client: Client, body: Any) -> Any:
    return client.patch(STATE, json.dumps(body), content_type="application/json")


def _evaluate(api, key, context, path="/api/v1/evaluate"):
    body = {"context": {"targetingKey": "u-1", **context}}
    if path == "/api/v1/evaluate":
        return api("POST", path, key, {**body, "flags": ["smart-compose"]}).json()["flags"][
            "smart-compose"
        ]
    return api("POST", path, key, body).json()


def test_register__201_listed_audited_and_served_nowhere(key, staff) -> None:
    created = _post(staff, {**V4, "reason": "CHG-9"})

    assert created.status_code == 201, created.content
    assert created.json()["servedIn"] == []
    assert created.json()["delta"] == V4["delta"]
    listed = staff.get(MODELS).json()
    assert [m["version"] for m in listed] == ["4.0.0", "3.0.0", "2.0.0"]
    entry = AuditEntry.objects.filter(action="modelversion.add").latest("pk")
    assert (entry.flag, entry.reason, entry.actor_name) == ("smart-compose", "CHG-9", "rm")
    assert entry.after["version"] == "4.0.0"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": "3.0.0"}, "detail"),  # already registered: the unique constraint
        ({"sha256": "XYZ"}, "sha256"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "https://models.example.com/\x00"}, "url"),
        ({"notes": "nul \x00 byte"}, "notes"),
        ({"sizeBytes": 0}, "sizeBytes"),
        ({"format": "pickle"}, "format"),
        ({"rung": "cloud"}, "rung"),
        ({"rung": "nope"}, "rung"),
        ({"requirements": [{"contextName": "memoryGb", "operator": "BOGUS"}]}, "requirements"),
        ({"delta": {**V4["delta"], "from": "0.9"}}, "delta.from"),
        ({"delta": {**V4["delta"], "checksum": "x"}}, "delta"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_register__bad_input__400_naming_the_field(key, staff, change, field) -> None:
    before = ModelVersion.objects.count()

    response = _post(staff, {**V4, **change})

    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert ModelVersion.objects.count() == before


def test_register__viewer__403_nothing_stored(key, client) -> None:
    from django.contrib.auth.models import Group, User

    from rollout.roles import VIEWER, roles_ensure

    roles_ensure()
    user = User.objects.create_user("vi", is_staff=True)
    user.groups.add(Group.objects.get(name=VIEWER))
    client.force_login(user)

    assert _post(client, V4).status_code == 403
    assert _patch(client, {"modelVersion": "3.0.0"}).status_code == 403
    assert not ModelVersion.objects.filter(version="4.0.0").exists()


def test_serve__evaluate_names_the_model_and_the_delta_for_the_held_version(
    api, key, staff, publish
) -> None:
    served = publish(lambda: _patch(staff, {"modelVersion": "3.0.0", "reason": "v3 for all"}))

    fresh = _evaluate(api, key, HIGH_END)
    holder = _evaluate(api, key, {**HIGH_END, "modelVersion": "2.0.0"})
    current = _evaluate(api, key, {**HIGH_END, "modelVersion": "3.0.0"})

    assert served.json()["modelVersion"] == "3.0.0"
    assert fresh["variant"] == "edge"
    model = fresh["metadata"]["model"]
    assert (model["name"], model["version"], model["update"]) == ("tiny-reply", "3.0.0", "full")
    assert model["url"].endswith("/static/edgeflags/models/tiny-reply-3.0.0.bin")
    assert holder["metadata"]["model"]["update"] == "delta"
    assert holder["metadata"]["model"]["delta"]["from"] == "2.0.0"
    assert current["metadata"]["model"]["update"] == "none"
    entry = AuditEntry.objects.filter(action="flagstate.model").latest("pk")
    assert (entry.before, entry.after) == ({"modelVersion": "2.0.0"}, {"modelVersion": "3.0.0"})


def test_ofrep__model_as_primitives(api, key) -> None:
    single = _evaluate(
        api, key, {**HIGH_END, "modelVersion": "1.0.0"}, "/ofrep/v1/evaluate/flags/smart-compose"
    )

    metadata = single["metadata"]
    assert metadata["modelName"] == "tiny-reply"
    assert metadata["modelVersion"] == "2.0.0"
    assert metadata["modelUpdate"] == "full"
    assert all(isinstance(v, (str, int, float, bool)) for v in metadata.values())


def test_non_device_rung__no_model(api, key) -> None:
    decision = _evaluate(api, key, {**HIGH_END, "webgpu": False})

    assert decision["variant"] == "cloud"
    assert "model" not in decision["metadata"]


def test_serve__unknown_version__404_naming_it_nothing_changed(key, staff) -> None:
    response = _patch(staff, {"modelVersion": "7.7.7", "enabled": False})

    assert response.status_code == 404
    assert "modelVersion" in response.json()
    state = FlagState.objects.get(flag__key="smart-compose", environment__key="production")
    assert state.enabled is True
    assert state.model_version.version == "2.0.0"


def test_serve__none__no_model_in_decisions(api, key, staff, publish) -> None:
    publish(lambda: _patch(staff, {"modelVersion": None}))

    decision = _evaluate(api, key, HIGH_END)

    assert decision["variant"] == "edge"
    assert "model" not in decision["metadata"]


def test_delete__a_served_version__refused(key) -> None:
    from django.db.models import ProtectedError

    from rollout.audit import Actor
    from rollout.services import rows_delete

    served = ModelVersion.objects.get(version="2.0.0")
    with pytest.raises(ProtectedError):
        rows_delete(rows=[served], actor=Actor("test"))


def test_quality_telemetry__counted_in_the_served_rung_and_version(api, key, publish) -> None:
    from telemetry.aggregates import telemetry_fold

    decision = _evaluate(api, key, {**HIGH_END, "modelVersion": "1.0.0"})
    token = decision["metadata"]["decisionToken"]
    run = uuid.uuid4().hex  # event ids outlive a test in the dedupe store
    event = {"flag": "smart-compose", "decisionToken": token}
    events = [
        {**event, "id": f"s1-{run}", "type": "suggestion", "accepted": True},
        {**event, "id": f"s2-{run}", "type": "suggestion", "accepted": False},
        {**event, "id": f"f1-{run}", "type": "freshness", "hours": 30.5},
        {
            **event,
            "id": f"u1-{run}",
            "type": "model_update",
            "from": "1.0.0",
            "to": "2.0.0",
            "delivery": "full",
            "ok": True,
            "bytes": 196_646,
        },
    ]

    accepted = api("POST", "/api/v1/events", key, {"targetingKey": "u-1", "events": events})
    telemetry_fold()

    assert accepted.status_code == 202, accepted.content
    bucket = MetricBucket.objects.filter(  # the demo's history is older than this minute
        flag="smart-compose", model_version="2.0.0", acceptance_n=1
    ).get()
    assert (bucket.rung, bucket.arm) == ("edge", decision["metadata"]["arm"])
    assert (bucket.acceptance_n, bucket.acceptance_sum) == (1, 0.5)
    assert (bucket.freshness_n, bucket.freshness_sum) == (1, 30.5)
    assert (bucket.updates_full, bucket.update_bytes_full) == (1, 196_646)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "suggestion"}, "accepted"),
        ({"type": "suggestion", "accepted": "yes"}, "accepted"),
        ({"type": "freshness", "hours": -1}, "hours"),
        ({"type": "model_update", "to": "9.9.9", "delivery": "full", "ok": True, "bytes": 1}, "to"),
        (
            {"type": "model_update", "to": "2.0.0", "delivery": "zip", "ok": True, "bytes": 1},
            "delivery",
        ),
        (
            {"type": "model_update", "to": "2.0.0", "delivery": "full", "ok": True, "bytes": -5},
            "bytes",
        ),
        (
            {"type": "model_update", "to": "2.0.0\x00", "delivery": "full", "ok": True, "bytes": 1},
            "to",
        ),
    ],
)
def test_quality_telemetry__bad_event__400_naming_it(api, key, change, field) -> None:
    decision = _evaluate(api, key, HIGH_END)
    event = {"id": "x1", "flag": "smart-compose", **change}
    event["decisionToken"] = decision["metadata"]["decisionToken"]

    response = api("POST", "/api/v1/events", key, {"targetingKey": "u-1", "events": [event]})

    assert response.status_code == 400, response.content
    assert response.json()["errorDetails"].startswith(f"events[0].{field}: ")


def test_model_update__decision_without_a_model__refused(api, key) -> None:
    decision = _evaluate(api, key, {**HIGH_END, "webgpu": False})  # cloud: no model
    event = {"id": "x2", "flag": "smart-compose", "type": "model_update", "to": "2.0.0",
             "delivery": "full", "ok": True, "bytes": 1,
             "decisionToken": decision["metadata"]["decisionToken"]}  # fmt: skip

    response = api("POST", "/api/v1/events", key, {"targetingKey": "u-1", "events": [event]})

    assert response.status_code == 400
    assert "served no model version" in response.json()["errorDetails"]
