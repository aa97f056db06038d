"""OFREP endpoints in-process: shapes, status codes and error bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rollout.models import Environment, FlagState
from rollout.services import flag_create, flag_state_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def flags(environment: Environment, publish: Callable[..., Any]) -> None:
    def create() -> None:
        flag_create(key="team/ai/compose", kind="object", off_value={"mode": "off"})
        state = FlagState.objects.get(flag__key="team/ai/compose", environment=environment)
        flag_state_update(
            state=state,
            enabled=True,
            variants=[{"name": "on", "weight": 1, "value": {"mode": "smart", "max": 3}}],
        )
        flag_create(key="temperature", kind="number", off_value=0.7)

    publish(create)


def test_ofrep_single__key_with_slash__evaluated(api, client_key, flags) -> None:
    response = api("POST", "/ofrep/v1/evaluate/flags/team/ai/compose", client_key, {"context": {}})

    assert response.status_code == 200
    body = response.json()
    assert body["key"] == "team/ai/compose"
    assert body["value"] == {"mode": "smart", "max": 3}
    assert body["variant"] == "on"
    assert body["reason"] == "STATIC"
    assert all(isinstance(v, (bool, int, float, str)) for v in body["metadata"].values())


def test_ofrep_single__unknown_flag__404_flag_not_found(api, client_key, flags) -> None:
    response = api("POST", "/ofrep/v1/evaluate/flags/missing", client_key, {})

    assert response.status_code == 404
    assert response.json() == {
        "key": "missing",
        "errorCode": "FLAG_NOT_FOUND",
        "errorDetails": "flag 'missing' does not exist",
    }


def test_ofrep_single__disabled_float__float_value_and_variant(api, client_key, flags) -> None:
    response = api("POST", "/ofrep/v1/evaluate/flags/temperature", client_key, {})

    assert b'"value":0.7' in response.content
    assert response.json()["variant"] == "disabled"
    assert response.json()["reason"] == "DISABLED"


def test_ofrep_single__bad_context__400_with_error_code(api, client_key, flags) -> None:
    response = api("POST", "/ofrep/v1/evaluate/flags/temperature", client_key, {"context": []})

    assert response.status_code == 400
    assert response.json()["errorCode"] == "INVALID_CONTEXT"
    assert response.json()["errorDetails"].startswith("context:")


def test_ofrep_bulk__etag__304_then_200_after_change(
    api, client_key, flags, environment, publish
) -> None:
    first = api("POST", "/ofrep/v1/evaluate/flags", client_key, {"context": {"targetingKey": "a"}})
    same = api(
        "POST",
        "/ofrep/v1/evaluate/flags",
        client_key,
        {"context": {"targetingKey": "a"}},
        if_none_match=first["ETag"],
    )
    state = FlagState.objects.get(flag__key="temperature", environment=environment)
    publish(lambda: flag_state_update(state=state, off_value=0.2))
    changed = api(
        "POST",
        "/ofrep/v1/evaluate/flags",
        client_key,
        {"context": {"targetingKey": "a"}},
        if_none_match=first["ETag"],
    )

    assert first.status_code == 200
    assert {f["key"] for f in first.json()["flags"]} == {"team/ai/compose", "temperature"}
    assert same.status_code == 304
    assert changed.status_code == 200


def test_ofrep__client_key_of_other_scope__403_on_snapshot_only(api, client_key, flags) -> None:
    assert api("POST", "/ofrep/v1/evaluate/flags", client_key, {}).status_code == 200
    assert api("GET", "/api/v1/snapshot", client_key).status_code == 403
