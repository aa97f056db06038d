"""Strict input on the client and management APIs: unknown fields, ranges, methods, lengths,
and failures that reach the client as a generic, logged answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from rollout.guardrails.plan import PLAN_RANGES
from rollout.models import Environment, FlagState, RolloutPlan
from rollout.services import flag_create, flag_state_update, rule_create

pytestmark = pytest.mark.django_db

STATE_URL = "/api/v1/flags/smart-compose/environments/production"
ROLLOUT_URL = "/api/v1/rollouts/smart-compose/production"


@pytest.fixture
def versioned(environment: Environment, publish: Callable[..., Any]) -> None:
    """A flag on for app versions above 2.0.0."""

    def create() -> None:
        flag_create(key="new-composer")
        state = FlagState.objects.get(flag__key="new-composer", environment=environment)
        flag_state_update(state=state, enabled=True)
        rule_create(
            state=state,
            constraints=[{"contextName": "appVersion", "operator": "SEMVER_GT", "value": "2.0.0"}],
        )

    publish(create)


def _post(staff: Client, url: str, body: Any) -> Any:
    return staff.post(url, data=json.dumps(body), content_type="application/json")


def test_flag_state_patch__unknown_field__400_naming_it_nothing_changed(edge_flag, staff) -> None:
    response = staff.patch(STATE_URL, data='{"enabld": false}', content_type="application/json")

    assert response.status_code == 400, response.content
    assert response.json() == {"enabld": ["unknown field"]}
    assert FlagState.objects.get(pk=edge_flag.pk).enabled is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"stages": [{"percentage": 1, "minDwelHours": 9}, {"percentage": 100}]}, "stages"),
        ({"guardrails": [{"metric": "latency", "tua": 0.2}]}, "guardrails"),
        ({"noDataHours": 1e308}, "noDataHours"),
        ({"burnInClients": 10**12}, "burnInClients"),
        ({"alpha": 0.9}, "alpha"),
        ({"stages": [{"percentage": 1, "maxDurationHours": 1e9}, {"percentage": 100}]}, "stages"),
        ({"guardrails": [{"metric": "latency", "tau": 1e300}]}, "guardrails"),
        ({"includedSegments": [f"s{i}" for i in range(10_000)]}, "includedSegments"),
        ({"excludedSegments": ["x" * 64]}, "excludedSegments"),
        ({"excludedSegments": ["no-such-segment"]}, "excludedSegments"),
        ({"includedSegments": [3]}, "includedSegments"),
        ({"startt": False}, "startt"),
    ],
    ids=[
        "stage-typo",
        "guardrail-typo",
        "no-data-1e308",
        "burn-in-1e12",
        "alpha-0.9",
        "stage-timeout-1e9",
        "tau-1e300",
        "10000-segments",
        "segment-key-64",
        "unknown-segment",
        "identity-not-key",
        "unknown-top-level",
    ],
)
def test_rollout_create__unknown_field_or_out_of_range__400_naming_it(
    edge_flag, staff, body, field
) -> None:
    response = _post(staff, ROLLOUT_URL, body)

    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not RolloutPlan.objects.exists()


def test_rollout_create__every_number_at_its_upper_bound__201(edge_flag, staff) -> None:
    def high(name: str) -> float:
        return PLAN_RANGES[name][1]

    body = {
        "alpha": high("alpha"),
        "burnInClients": high("burnInClients"),
        "noDataHours": high("noDataHours"),
        "stages": [
            {
                "percentage": 1,
                "minDwellHours": high("stages[].minDwellHours"),
                "minTreatmentClients": high("stages[].minTreatmentClients"),
                "maxDurationHours": high("stages[].maxDurationHours"),
            },
            {"percentage": high("stages[].percentage")},
        ],
        "guardrails": [
            {
                "metric": "latency",
                "tau": high("guardrails[].tau"),
                "margin": high("guardrails[].margin"),
            }
        ],
        "includedSegments": ["edge-ready"],
    }

    response = _post(staff, ROLLOUT_URL, body)

    assert response.status_code == 201, response.content
    assert response.json()["noDataHours"] == 720.0


@pytest.mark.parametrize(
    "url",
    [f"{ROLLOUT_URL}/kill", f"{ROLLOUT_URL}/segments/edge-ready/pause"],
    ids=["kill", "segment-action"],
)
def test_rollout_actions__unknown_field__400_nothing_done(edge_flag, staff, url) -> None:
    _post(staff, ROLLOUT_URL, {})

    response = _post(staff, url, {"reason": "incident", "force": True})

    assert response.status_code == 400, response.content
    assert response.json() == {"force": ["unknown field"]}
    assert set(RolloutPlan.objects.get().segments.values_list("state", flat=True)) == {"ramping"}


@pytest.mark.parametrize(
    "path", ["/ofrep/v1/evaluate/flags/new-composer", "/ofrep/v1/evaluate/flags"]
)
def test_ofrep__unknown_body_field__400_naming_it(api, client_key, versioned, path) -> None:
    response = api("POST", path, client_key, {"context": {"targetingKey": "u"}, "contxt": {}})

    assert response.status_code == 400, response.content
    assert response.json()["errorDetails"] == "contxt: unknown field"


def test_evaluate__chunked_body_without_length__411_json(client, client_key, versioned) -> None:
    # What a WSGI server hands Django for a chunked body: no CONTENT_LENGTH (the live
    # test in test_live.py sends a real one through granian).
    response = client.post(
        "/api/v1/evaluate",
        data=b'{"context": {"appVersion": "3.0.0"}}',
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        HTTP_AUTHORIZATION=f"Bearer {client_key}",
    )

    assert response.status_code == 411
    assert response.json()["errorCode"] == "LENGTH_REQUIRED"


@pytest.mark.parametrize(
    ("version", "enabled"),
    [("3.0.0", True), ("1" * 5000 + ".0.0", False), ("3.0.0-" + "9" * 5000, False)],
    ids=["plain", "5000-digit-major", "5000-digit-prerelease"],
)
def test_evaluate__huge_app_version__not_a_version_200(
    api, client_key, versioned, version, enabled
) -> None:
    body = {"context": {"targetingKey": "u", "appVersion": version}, "flags": ["new-composer"]}

    response = api("POST", "/api/v1/evaluate", client_key, body)

    assert response.status_code == 200, response.content
    assert response.json()["flags"]["new-composer"]["value"] is enabled


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/v1/evaluate", "POST"),
        ("PUT", "/ofrep/v1/evaluate/flags", "POST"),
        ("POST", "/ofrep/v1/configuration", "GET"),
        ("GET", "/api/v1/events", "POST"),
        ("GET", "/api/v1/probes", "POST"),
        ("POST", "/api/v1/probes/someone", "DELETE"),
    ],
)
def test_client_api__wrong_method__405_json_with_allow(
    client, client_key, versioned, method, path, allowed
) -> None:
    response = client.generic(method, path, HTTP_AUTHORIZATION=f"Bearer {client_key}")

    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert response.json()["errorCode"] == "METHOD_NOT_ALLOWED"


def test_client_api__401__names_the_scheme(api, versioned) -> None:
    response = api("POST", "/api/v1/evaluate", "efc_not-a-real-key", {})

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="edgeflags"'


def test_management_api__401__names_the_scheme(client) -> None:
    response = client.get("/api/v1/flags", HTTP_AUTHORIZATION="Token not-a-token")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


def test_evaluate__unexpected_failure__generic_500_logged_with_traceback(
    api, client_key, versioned, monkeypatch, caplog
) -> None:
    from api import client as client_module

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(client_module, "evaluate_all", broken)  # a bug on the hot path

    with caplog.at_level("ERROR", logger="api.client"):
        response = api("POST", "/api/v1/evaluate", client_key, {"context": {}})

    assert response.status_code == 500
    assert response.json() == {
        "errorCode": "GENERAL",
        "errorDetails": "internal error (logged on the server)",
    }
    [record] = [r for r in caplog.records if r.name == "api.client"]
    assert "/api/v1/evaluate" in record.getMessage()
    assert record.exc_info is not None
    assert "secret internals" in str(record.exc_info[1])


@pytest.mark.django_db
def test_unknown_api_path__json_404_naming_it(client) -> None:
    response = client.get("/api/v1/evaluat")
    page = client.get("/no-such-page")

    assert response.status_code == 404
    assert response.json() == {
        "errorCode": "NOT_FOUND",
        "errorDetails": "path: no endpoint /api/v1/evaluat",
    }
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")
