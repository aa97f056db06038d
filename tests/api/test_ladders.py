"""Edge features over the API: rungs, UI states, availability per segment, safe answers."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from access.api_keys import api_key_create
from rollout.audit import Actor
from rollout.models import Environment, Flag, FlagState, RolloutPlan
from rollout.rollouts import rollout_action, rollout_plan_create
from rollout.services import flag_ladder_set
from tests.support.demo import load_demo

pytestmark = pytest.mark.django_db

HIGH_END = {"memoryGb": 16, "benchmarkMs": 10, "webgpu": True, "rttMs": 50, "cores": 12}


@pytest.fixture
def key(publish) -> str:
    load_demo(publish)
    environment = Environment.objects.get(key="production")
    return publish(lambda: api_key_create(environment=environment, scope="client", name="t"))[1]


def _smart_compose(api, key, context):
    body = {"context": {"targetingKey": "u-1", **context}, "flags": ["smart-compose"]}
    return api("POST", "/api/v1/evaluate", key, body).json()["flags"]["smart-compose"]


def test_evaluate__high_end_inline__edge_with_ui_state(api, key) -> None:
    decision = _smart_compose(api, key, HIGH_END)

    assert decision["variant"] == "edge"
    assert decision["value"] == "edge"
    assert decision["uiState"]["component"] == "SmartCompose"
    assert decision["metadata"]["rung"] == "edge"
    assert decision["metadata"]["segment"]  # the server-computed capability segment


def test_evaluate__slow_device__unmet_requirements_named(api, key) -> None:
    decision = _smart_compose(api, key, {**HIGH_END, "memoryGb": 2, "benchmarkMs": 400})

    assert decision["variant"] == "cloud"
    assert decision["unmet"] == {"edge": ["memoryGb ≥ 4", "benchmarkMs ≤ 60"]}


def test_evaluate__no_profile__safe_rung_default(api, key) -> None:
    decision = _smart_compose(api, key, {})

    assert (decision["variant"], decision["reason"]) == ("lite", "DEFAULT")
    assert decision["uiState"]["component"] == "TemplateReplies"


def test_evaluate__segment_rolled_back__baseline_for_it_only(api, key, publish) -> None:
    segment = _smart_compose(api, key, HIGH_END)["metadata"]["segment"]
    state = FlagState.objects.get(flag__key="smart-compose", environment__key="production")
    publish(lambda: RolloutPlan.objects.filter(flag_state=state).delete())
    publish(
        lambda: rollout_plan_create(state=state, actor=Actor("test"), stages=[{"percentage": 100}])
    )
    assert _smart_compose(api, key, HIGH_END)["variant"] == "edge"  # complete: everyone

    publish(
        lambda: rollout_action(
            flag="smart-compose",
            environment="production",
            segment=segment,
            action="rollback",
            actor=Actor("test"),
            reason="test",
        )
    )

    rolled_back = _smart_compose(api, key, HIGH_END)
    assert (rolled_back["variant"], rolled_back["metadata"]["arm"]) == ("lite", "control")
    assert rolled_back["metadata"]["rolloutState"] == "rolled_back"


def test_ofrep__ladder_flag__primitive_metadata_only(api, key) -> None:
    body = api(
        "POST",
        "/ofrep/v1/evaluate/flags/smart-compose",
        key,
        {"context": {"targetingKey": "u", **HIGH_END, "webgpu": False}},
    ).json()

    assert body["variant"] == "cloud"
    assert body["metadata"]["unmetRequirements"] == "edge: webgpu in [true]"
    assert all(isinstance(v, (str, int, float, bool)) for v in body["metadata"].values())
    assert "uiState" not in body


def test_ladder_set__last_rung_with_requirements__rejected_naming_it(key) -> None:
    flag = Flag.objects.get(key="smart-compose")
    rungs = [
        {"key": "edge", "ui_state": {"component": "A"}},
        {
            "key": "off",
            "ui_state": {"component": "None"},
            "requirements": [{"contextName": "cores", "operator": "NUM_GTE", "value": "2"}],
        },
    ]

    with pytest.raises(ValidationError, match=r"rungs\[1\].requirements: the last rung has none"):
        flag_ladder_set(flag=flag, rungs=rungs, baseline="off", safe="off")


def test_ladder_set__bad_ui_state__rejected_by_schema(key) -> None:
    flag = Flag.objects.get(key="smart-compose")
    rungs = [
        {"key": "edge", "ui_state": {"copy": "x"}},
        {"key": "off", "ui_state": {"component": "None"}},
    ]

    with pytest.raises(ValidationError, match="'component' is a required property"):
        flag_ladder_set(flag=flag, rungs=rungs, baseline="off", safe="off")


def test_admin_flag_page__ladder_preview_shows_reach(admin_client, key) -> None:
    flag = Flag.objects.get(key="smart-compose")

    page = admin_client.get(f"/admin/rollout/flag/{flag.pk}/change/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "Ladder reach (current population)" in text
    for rung in ("edge", "cloud", "lite", "off"):
        assert f"<div>{rung}: <strong>" in text
