"""OFREP conformance against the protocol's own schemas (tests/support/ofrep_schema.py):
every answer of every OFREP endpoint, errors included; TARGETING_KEY_MISSING for a split
without a targeting key; flag answers and ETags that change only with what they say."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from access.api_keys import api_key_create
from rollout.models import Environment, FlagState
from rollout.services import flag_create, flag_state_update, rule_create
from tests.support.ofrep_schema import problems

pytestmark = pytest.mark.django_db

SINGLE = "/ofrep/v1/evaluate/flags/"
BULK = "/ofrep/v1/evaluate/flags"


def _variant(name: str, value: Any, weight: int = 1) -> dict[str, Any]:
    return {"name": name, "weight": weight, "value": value}


@pytest.fixture
def flags(environment: Environment, publish: Callable[..., Any]) -> None:
    """A flag of every type, a variant split and a percentage rollout."""

    def state(key: str) -> FlagState:
        return FlagState.objects.get(flag__key=key, environment=environment)

    def create() -> None:
        for key, kind, off, on in (
            ("dark-mode", "boolean", False, None),
            ("greeting", "string", "Hi", "Dear"),
            ("max-items", "number", 3, 10),
            ("temperature", "number", 0.7, 0.2),
            ("compose", "object", {"mode": "off"}, {"mode": "smart"}),
        ):
            flag_create(key=key, kind=kind, off_value=off)
            variants = [] if on is None else [_variant("on", on)]
            flag_state_update(state=state(key), enabled=True, variants=variants)
        flag_create(key="lead-scoring-model", kind="string", off_value="gbm-v2")
        flag_state_update(
            state=state("lead-scoring-model"),
            enabled=True,
            variants=[_variant("gbm", "gbm-v3"), _variant("tiny", "tiny-transformer")],
        )
        flag_create(key="half-rollout", kind="boolean", off_value=False)
        flag_state_update(state=state("half-rollout"), enabled=True)
        rule_create(state=state("half-rollout"), strategy="flexibleRollout", rollout_percentage=50)

    publish(create)


def _checked(
    api: Callable[..., Any],
    endpoint: str,
    method: str,
    path: str,
    key: Any,
    body: Any = None,
    **headers: str,
) -> Any:
    response = api(method, path, key, body, **headers)
    if response.status_code != 304:
        found = problems(endpoint, response.status_code, response.json())
        assert found == [], (path, response.status_code, response.json())
    return response


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("dark-mode", True),
        ("greeting", "Dear"),
        ("max-items", 10),
        ("temperature", 0.2),
        ("compose", {"mode": "smart"}),
    ],
)
def test_single__every_type__conforms(api, client_key, flags, flag, value) -> None:
    response = _checked(
        api, "single", "POST", SINGLE + flag, client_key, {"context": {"targetingKey": "u1"}}
    )

    assert response.status_code == 200
    assert response.json()["value"] == value


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"context": {"targetingKey": 7}}, 400, "INVALID_CONTEXT"),
        ("{not json", 400, "PARSE_ERROR"),
        ({"context": {}}, 400, "TARGETING_KEY_MISSING"),
    ],
)
def test_single__bad_request__evaluation_failure_naming_the_flag(
    api, client_key, flags, body, status, code
) -> None:
    response = _checked(api, "single", "POST", SINGLE + "lead-scoring-model", client_key, body)

    assert response.status_code == status
    assert response.json()["key"] == "lead-scoring-model"
    assert response.json()["errorCode"] == code


def test_single__unknown_flag__flag_not_found(api, client_key, flags) -> None:
    response = _checked(api, "single", "POST", SINGLE + "nope", client_key, {})

    assert response.status_code == 404
    assert response.json() == {
        "key": "nope",
        "errorCode": "FLAG_NOT_FOUND",
        "errorDetails": "flag 'nope' does not exist",
    }


@pytest.mark.parametrize("key", [None, "unknown-key"])
def test_single__unauthorized__error_body_names_the_flag(api, flags, key) -> None:
    response = api("POST", SINGLE + "greeting", key, {})

    assert response.status_code == 401
    assert response.json()["key"] == "greeting"  # the JS providers read errors by key


def test_bulk__every_flag__conforms_and_split_without_key_is_a_failure_item(
    api, client_key, flags
) -> None:
    keyed = _checked(api, "bulk", "POST", BULK, client_key, {"context": {"targetingKey": "u1"}})
    unkeyed = _checked(api, "bulk", "POST", BULK, client_key, {"context": {}})

    assert keyed.status_code == unkeyed.status_code == 200
    assert all("errorCode" not in item for item in keyed.json()["flags"])
    items = {item["key"]: item for item in unkeyed.json()["flags"]}
    for split in ("lead-scoring-model", "half-rollout"):
        assert items[split] == {
            "key": split,
            "errorCode": "TARGETING_KEY_MISSING",
            "errorDetails": "targetingKey: required by this flag's split",
        }
    assert items["greeting"]["value"] == "Dear"  # one variant is no split


def test_bulk__event_streams__as_adr_0008_and_none_when_the_stream_is_off(
    api, client_key, flags, settings
) -> None:
    settings.EDGEFLAGS_STREAM_URL = "https://flags.example.com"
    advertised = _checked(api, "bulk", "POST", BULK, client_key, {"context": {"targetingKey": "u"}})
    settings.EDGEFLAGS_STREAM_URL = ""
    off = _checked(api, "bulk", "POST", BULK, client_key, {"context": {"targetingKey": "u"}})

    assert advertised.json()["eventStreams"] == [
        {
            "type": "sse",
            "url": f"https://flags.example.com/stream/v1/flags?key={client_key}",
            "inactivityDelaySec": 120,
        }
    ]
    assert "eventStreams" not in off.json()
    assert "refreshConnections" not in off.json()


def test_bulk__bad_body__bulk_failure(api, client_key, flags) -> None:
    response = _checked(api, "bulk", "POST", BULK, client_key, "[1, 2]")

    assert response.status_code == 400


def test_configuration__conforms(api, client_key) -> None:
    assert (
        _checked(api, "configuration", "GET", "/ofrep/v1/configuration", client_key).status_code
        == 200
    )


def test_split_without_key__twenty_requests__one_answer_and_one_etag(
    api, client_key, flags
) -> None:
    singles = {
        str(api("POST", SINGLE + "lead-scoring-model", client_key, {}).json()) for _ in range(20)
    }
    etags = {api("POST", BULK, client_key, {}).headers["ETag"] for _ in range(20)}
    evaluated = {
        str(api("POST", "/api/v1/evaluate", client_key, {}).json()["flags"]["lead-scoring-model"])
        for _ in range(20)
    }

    assert len(singles) == len(etags) == len(evaluated) == 1
    decision = api("POST", "/api/v1/evaluate", client_key, {}).json()["flags"]["lead-scoring-model"]
    assert decision["errorCode"] == "TARGETING_KEY_MISSING"
    assert decision["reason"] == "ERROR"
    assert decision["value"] == "gbm-v2"  # the off value, not a draw


def test_publish_changing_no_flag__bulk_etag_unchanged(
    api, client_key, flags, environment, publish
) -> None:
    context = {"context": {"targetingKey": "u1"}}
    before = api("POST", BULK, client_key, context)

    publish(lambda: api_key_create(environment=environment, scope="client", name="another"))
    after = api("POST", BULK, client_key, context, If_None_Match=before.headers["ETag"])

    assert after.status_code == 304


def test_one_flag_changed__only_its_item_changes(
    api, client_key, flags, environment, publish
) -> None:
    context = {"context": {"targetingKey": "u1"}}
    before = {i["key"]: i for i in api("POST", BULK, client_key, context).json()["flags"]}
    state = FlagState.objects.get(flag__key="greeting", environment=environment)

    publish(lambda: flag_state_update(state=state, variants=[_variant("on", "Hello")]))
    after = {i["key"]: i for i in api("POST", BULK, client_key, context).json()["flags"]}

    assert [key for key in before if before[key] != after[key]] == ["greeting"]
