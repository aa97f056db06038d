"""A model version rolled out like a rung, over the management API on PostgreSQL: treatment
gets the new version, control keeps the current one, a segment's rollback returns it to the
current version, the kill switch returns every segment, and a plan complete everywhere makes
its version the environment's."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from access.api_keys import api_key_create
from rollout.engine.hashing import normalized
from rollout.models import AuditEntry, Environment, FlagState, RolloutPlan
from tests.support.demo import load_demo

pytestmark = pytest.mark.django_db

PLAN = "/api/v1/rollouts/smart-compose/production"
HIGH_END = {"memoryGb": 16, "benchmarkMs": 10, "webgpu": True, "rttMs": 50, "cores": 12}
USERS = [f"user-{n}" for n in range(60)]


@pytest.fixture
def key(publish) -> str:
    load_demo(publish)
    environment = Environment.objects.get(key="production")
    return publish(lambda: api_key_create(environment=environment, scope="client", name="t"))[1]


def _post(client: Client, path: str, body: Any) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json")


def _versions(api, key) -> dict[str, tuple[str, str | None]]:
    """(model version, arm) per user, for high-end clients of one segment."""
    found = {}
    for user in USERS:
        body = {"context": {"targetingKey": user, **HIGH_END}, "flags": ["smart-compose"]}
        decision = api("POST", "/api/v1/evaluate", key, body).json()["flags"]["smart-compose"]
        assert decision["variant"] == "edge"
        found[user] = (decision["metadata"]["model"]["version"], decision["metadata"].get("arm"))
    return found


def _segment(api, key) -> str:
    body = {"context": {"targetingKey": "u", **HIGH_END}, "flags": ["smart-compose"]}
    return api("POST", "/api/v1/evaluate", key, body).json()["flags"]["smart-compose"]["metadata"][
        "segment"
    ]


def _advance_to(staff: Client, publish, segment: str, stages: int) -> None:
    for _ in range(stages):
        response = publish(
            lambda: _post(staff, f"{PLAN}/segments/{segment}/advance", {"reason": "ramp"})
        )
        assert response.status_code == 200, response.content


def test_model_rollout__ramps_rolls_back_and_kills_by_version(api, key, staff, publish) -> None:
    started = publish(
        lambda: _post(staff, PLAN, {"targetModelVersion": "3.0.0", "reason": "CHG-12: v3"})
    )
    assert started.status_code == 201, started.content
    plan = started.json()
    assert (plan["targetModelVersion"], plan["targetRung"]) == ("3.0.0", "edge")
    segment = _segment(api, key)
    stages = [stage["percentage"] for stage in plan["stages"]]
    half = stages.index(next(p for p in stages if p >= 50))
    _advance_to(staff, publish, segment, half)  # started at stage 0: now at the first ≥ 50 %

    ramping = _versions(api, key)
    overview = staff.get("/admin/console/?environment=production&partial=1").content.decode()
    publish(lambda: _post(staff, f"{PLAN}/segments/{segment}/rollback", {"reason": "INC-7"}))
    rolled_back = _versions(api, key)

    percentage = stages[half]
    for user, (version, arm) in ramping.items():
        treated = normalized(user, "smart-compose") <= percentage
        assert (version, arm) == (("3.0.0", "treatment") if treated else ("2.0.0", "control"))
    assert {version for version, _ in rolled_back.values()} == {"2.0.0"}
    assert f"model tiny-reply 3.0.0 · {percentage} %, 2.0.0 for the rest" in overview
    after = staff.get("/admin/console/?environment=production&partial=1").content.decode()
    assert "model tiny-reply 2.0.0" in after

    publish(lambda: _post(staff, f"{PLAN}/kill", {"reason": "INC-8"}))
    assert {version for version, _ in _versions(api, key).values()} == {"2.0.0"}


def test_model_rollout__replaces_a_complete_plan_and_completing_promotes(
    api, key, staff, publish
) -> None:
    state = FlagState.objects.get(flag__key="smart-compose", environment__key="production")
    assert state.rollout_plan.target_model is None  # the demo's rung rollout, complete

    publish(lambda: _post(staff, PLAN, {"targetModelVersion": "3.0.0", "reason": "v3"}))
    plan = RolloutPlan.objects.get(flag_state=state)
    # Every segment complete (the controller's work, done here at once).
    plan.segments.update(state="complete", stage=len(plan.stages) - 1)
    publish(lambda: plan.save())
    assert {version for version, _ in _versions(api, key).values()} == {"3.0.0"}

    again = publish(lambda: _post(staff, PLAN, {"targetRung": "edge", "reason": "next"}))

    assert again.status_code == 201, again.content
    state.refresh_from_db()
    assert state.model_version.version == "3.0.0"  # promoted: the environment's version now
    retired = AuditEntry.objects.filter(action="rollout.retire").latest("pk")
    assert retired.before["targetModelVersion"] == "3.0.0"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"targetModelVersion": "9.9.9"}, 404, "targetModelVersion"),
        ({"targetModelVersion": "2.0.0"}, 400, "targetModelVersion"),  # already served
        ({"targetModelVersion": "3.0.0", "targetRung": "cloud"}, 400, "targetRung"),
    ],
)
def test_model_rollout__bad_target__refused_naming_it(key, staff, body, status, field) -> None:
    before = RolloutPlan.objects.get(
        flag_state__flag__key="smart-compose", flag_state__environment__key="production"
    )

    response = _post(staff, PLAN, {**body, "reason": "try"})

    assert response.status_code == status, response.content
    assert field in response.json(), response.json()
    assert RolloutPlan.objects.get(pk=before.pk).target_model is None


def test_new_plan__over_an_unfinished_one__409(key, staff) -> None:
    response = _post(
        staff,
        "/api/v1/rollouts/smart-compose/staging",
        {"targetModelVersion": "3.0.0", "reason": "try"},
    )

    assert response.status_code == 409
    assert "not complete" in response.json()["flag"][0]
