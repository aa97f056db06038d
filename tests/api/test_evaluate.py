"""POST /api/v1/evaluate and GET /api/v1/snapshot: answers, ETags, keys and bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from access.api_keys import api_key_revoke
from rollout.models import Environment, FlagState
from rollout.services import flag_create, flag_state_update, rule_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def flags(environment: Environment, publish: Callable[..., Any]) -> None:
    def create() -> None:
        flag_create(key="new-checkout")
        state = FlagState.objects.get(flag__key="new-checkout", environment=environment)
        flag_state_update(state=state, enabled=True)
        rule_create(
            state=state,
            constraints=[{"contextName": "plan", "operator": "IN", "values": ["pro"]}],
        )
        flag_create(key="banner-text", kind="string", off_value="hello")
        banner = FlagState.objects.get(flag__key="banner-text", environment=environment)
        flag_state_update(
            state=banner,
            enabled=True,
            variants=[
                {"name": "a", "weight": 500, "value": "Welcome!"},
                {"name": "b", "weight": 500, "value": "Hi there!"},
            ],
        )
        rule_create(state=banner, rollout_percentage=100)
        flag_create(key="ratio", kind="number", off_value=0.5)

    publish(create)


def test_evaluate__pro_user__targeting_match_with_version(api, client_key, flags) -> None:
    response = api(
        "POST", "/api/v1/evaluate", client_key, {"context": {"targetingKey": "u1", "plan": "pro"}}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["environment"] == "production"
    decision = body["flags"]["new-checkout"]
    assert decision["value"] is True
    assert decision["reason"] == "TARGETING_MATCH"
    assert decision["metadata"]["enabled"] is True
    assert body["snapshotVersion"] > 0
    assert "snapshotVersion" not in decision["metadata"]  # a flag's answer, nothing else


def test_evaluate__free_user__default_off_value(api, client_key, flags) -> None:
    body = api(
        "POST", "/api/v1/evaluate", client_key, {"context": {"targetingKey": "u1", "plan": "free"}}
    ).json()

    assert body["flags"]["new-checkout"]["value"] is False
    assert body["flags"]["new-checkout"]["reason"] == "DEFAULT"
    assert body["flags"]["new-checkout"]["variant"] == "disabled"


def test_evaluate__disabled_number_flag__off_value_as_float(api, client_key, flags) -> None:
    response = api("POST", "/api/v1/evaluate", client_key, {"flags": ["ratio"]})

    assert b'"value":0.5' in response.content
    assert response.json()["flags"]["ratio"]["reason"] == "DISABLED"


def test_evaluate__weighted_variants__sticky_split(api, client_key, flags) -> None:
    def variant(user: str) -> str:
        body = api(
            "POST",
            "/api/v1/evaluate",
            client_key,
            {"context": {"targetingKey": user}, "flags": ["banner-text"]},
        ).json()
        return body["flags"]["banner-text"]["variant"]

    first = [variant(f"user-{i}") for i in range(40)]
    again = [variant(f"user-{i}") for i in range(40)]

    assert first == again
    assert set(first) == {"a", "b"}


def test_evaluate__same_request_with_etag__304(api, client_key, flags) -> None:
    body = {"context": {"targetingKey": "u1"}}
    first = api("POST", "/api/v1/evaluate", client_key, body)

    second = api("POST", "/api/v1/evaluate", client_key, body, if_none_match=first["ETag"])

    assert first.status_code == 200
    assert second.status_code == 304
    assert second["ETag"] == first["ETag"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        ({"context": "u1"}, "context"),
        ({"context": {"targetingKey": 42}}, "context.targetingKey"),
        ({"flags": "new-checkout"}, "flags"),
        ({"flags": ["new-checkout", 7]}, "flags[1]"),
        ({"flags": ["nope"]}, "flags"),
        ({"contxt": {}}, "contxt"),
    ],
)
def test_evaluate__bad_input__400_naming_the_field(api, client_key, flags, body, field) -> None:
    response = api("POST", "/api/v1/evaluate", client_key, body)

    assert response.status_code == 400
    assert response.json()["errorDetails"].startswith(f"{field}:")


def test_evaluate__body_over_64_kib__413(api, client_key, flags) -> None:
    big = {"context": {"targetingKey": "u", "blob": "x" * (65 * 1024)}}

    response = api("POST", "/api/v1/evaluate", client_key, big)

    assert response.status_code == 413


@pytest.mark.parametrize("key", [None, "efc_not-a-real-key"])
def test_evaluate__missing_or_unknown_key__401(api, flags, key) -> None:
    response = api("POST", "/api/v1/evaluate", key, {})

    assert response.status_code == 401
    assert response.json()["errorDetails"].startswith("Authorization:")


def test_evaluate__revoked_key__401(api, client_key, flags, publish) -> None:
    from rollout.models import ApiKey

    publish(lambda: api_key_revoke(api_key=ApiKey.objects.get(scope="client")))

    response = api("POST", "/api/v1/evaluate", client_key, {})

    assert response.status_code == 401
    assert "revoked" in response.json()["errorDetails"]


def test_evaluate__x_api_key_header__accepted(client, client_key, flags) -> None:
    response = client.post(
        "/api/v1/evaluate", data="{}", content_type="application/json", HTTP_X_API_KEY=client_key
    )

    assert response.status_code == 200


def test_evaluate__no_database_query_on_the_hot_path(
    api, client_key, flags, django_assert_num_queries
) -> None:
    api("POST", "/api/v1/evaluate", client_key, {})  # first request loads the snapshot

    with django_assert_num_queries(0):
        for i in range(20):
            assert (
                api(
                    "POST", "/api/v1/evaluate", client_key, {"context": {"targetingKey": str(i)}}
                ).status_code
                == 200
            )


def test_snapshot__client_key__403(api, client_key, flags) -> None:
    response = api("GET", "/api/v1/snapshot", client_key)

    assert response.status_code == 403


def test_snapshot__server_key__ruleset_with_etag(api, server_key, flags) -> None:
    first = api("GET", "/api/v1/snapshot", server_key)
    second = api("GET", "/api/v1/snapshot", server_key, if_none_match=first["ETag"])

    assert first.status_code == 200
    document = first.json()
    assert {f["key"] for f in document["flags"]} == {"new-checkout", "banner-text", "ratio"}
    assert document["environment"] == "production"
    assert second.status_code == 304


def test_evaluate__flag_changed__new_version_served(
    api, client_key, flags, environment, publish
) -> None:
    before = api("POST", "/api/v1/evaluate", client_key, {"flags": ["ratio"]}).json()
    state = FlagState.objects.get(flag__key="ratio", environment=environment)

    publish(lambda: flag_state_update(state=state, enabled=True))
    after = api("POST", "/api/v1/evaluate", client_key, {"flags": ["ratio"]}).json()

    assert after["snapshotVersion"] > before["snapshotVersion"]
    assert after["flags"]["ratio"]["reason"] != "DISABLED"
