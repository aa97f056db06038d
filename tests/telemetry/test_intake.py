"""POST /api/v1/events: validation (all or nothing), deduplication, keys, buffer outages."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from capability_probe.services import client_hash
from rollout.models import SeenEvent, TelemetryBatch
from telemetry.buffer import buffered_count, redis_peek
from tests.support.metrics import scrape, total
from tests.support.processes import free_port
from tests.support.telemetry import FLAG, SEGMENT, Events, served

pytestmark = pytest.mark.django_db

GOOD = {"id": "good-0", "type": "exposure", "flag": FLAG, "segment": SEGMENT, "arm": "control"}


def _inference(**fields: Any) -> dict[str, Any]:
    return {"id": "bad-1", "type": "inference", "flag": FLAG, "segment": SEGMENT,
            "arm": "treatment", "ms": 12.5, **fields}  # fmt: skip


def _feedback(**fields: Any) -> dict[str, Any]:
    return {"id": "bad-1", "type": "feedback", "flag": FLAG, "segment": SEGMENT,
            "arm": "treatment", "rating": 4, **fields}  # fmt: skip


def _without(event: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != name}


def _now_ms(offset: timedelta = timedelta()) -> int:
    return int((datetime.now(UTC) + offset).timestamp() * 1000)


BAD_EVENTS = {
    "missing id": (_without(_inference(), "id"), "events[1].id"),
    "empty id": (_inference(id=""), "events[1].id"),
    "id over 64": (_inference(id="x" * 65), "events[1].id"),
    "id a number": (_inference(id=7), "events[1].id"),
    "bad type": (_inference(type="click"), "events[1].type"),
    "type missing": (_without(_inference(), "type"), "events[1].type"),
    "unknown flag": (_inference(flag="no-such-flag"), "events[1].flag"),
    "flag missing": (_without(_inference(), "flag"), "events[1].flag"),
    "segment empty": (_inference(segment=""), "events[1].segment"),
    "segment over 63": (_inference(segment="s" * 64), "events[1].segment"),
    "arm unknown": (_inference(arm="both"), "events[1].arm"),
    "arm a number": (_inference(arm=1), "events[1].arm"),
    "token null": (_inference(decisionToken=None), "events[1].decisionToken"),
    "token not a string": (_inference(decisionToken=7), "events[1].decisionToken"),
    "token garbage": (_inference(decisionToken="1.x.t0.edge-ready.AAAA"),
                      "events[1].decisionToken"),
    "id with NUL": (_inference(id="a\u0000b"), "events[1].id"),
    "id with a control character": (_inference(id="a\u001bb"), "events[1].id"),
    "flag with NUL": (_inference(flag="smart\u0000compose"), "events[1].flag"),
    "segment with NUL": (_inference(segment="a\u0000b"), "events[1].segment"),
    "arm with NUL": (_inference(arm="treat\u0000ment"), "events[1].arm"),
    "rating 0": (_feedback(rating=0), "events[1].rating"),
    "rating 6": (_feedback(rating=6), "events[1].rating"),
    "rating a string": (_feedback(rating="5"), "events[1].rating"),
    "rating true": (_feedback(rating=True), "events[1].rating"),
    "rating 4.5": (_feedback(rating=4.5), "events[1].rating"),
    "rating missing": (_without(_feedback(), "rating"), "events[1].rating"),
    "ms negative": (_inference(ms=-3), "events[1].ms"),
    "ms zero": (_inference(ms=0), "events[1].ms"),
    "ms over ten minutes": (_inference(ms=600_001), "events[1].ms"),
    "ms huge": (_inference(ms=1e300), "events[1].ms"),
    "ms a string": (_inference(ms="12"), "events[1].ms"),
    "ms true": (_inference(ms=True), "events[1].ms"),
    "ms missing": (_without(_inference(), "ms"), "events[1].ms"),
    "ok not a bool": (_inference(ok="yes"), "events[1].ok"),
    "energy zero": (
        {**_without(_inference(), "ms"), "type": "energy", "millijoules": 0},
        "events[1].millijoules",
    ),
    "energy over 1e7": (
        {**_without(_inference(), "ms"), "type": "energy", "millijoules": 1.5e7},
        "events[1].millijoules",
    ),
    "field of another type": (_feedback(ms=3), "events[1].ms"),
    "unknown field": (_inference(colour="red"), "events[1].colour"),
    # built when the test runs, not at import: a long suite must not age them into the window
    "timestamp 25 h old": (lambda: _inference(timestamp=_now_ms(-timedelta(hours=25))),
                           "events[1].timestamp"),
    "timestamp 10 min ahead": (lambda: _inference(timestamp=_now_ms(timedelta(minutes=10))),
                               "events[1].timestamp"),
    "timestamp ISO too old": (_inference(timestamp="2001-01-01T00:00:00Z"), "events[1].timestamp"),
    "timestamp not a date": (_inference(timestamp="yesterday"), "events[1].timestamp"),
    "timestamp true": (_inference(timestamp=True), "events[1].timestamp"),
    "timestamp huge": (_inference(timestamp=1e300), "events[1].timestamp"),
    "event not an object": ("crash", "events[1]"),
}  # fmt: skip


def _body(environment: Any, events: list[Any], targeting_key: str = "d") -> dict[str, Any]:
    return {"targetingKey": targeting_key, "events": served(environment, targeting_key, events)}


def _nothing_stored() -> None:
    assert buffered_count() == 0
    assert SeenEvent.objects.count() == 0
    assert TelemetryBatch.objects.count() == 0


@pytest.mark.parametrize(("event", "field"), BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_events__bad_event__400_naming_index_and_field_nothing_stored(
    send, flags, buffer_mode, event, field
) -> None:
    response = send("device-1", [GOOD, event() if callable(event) else event])

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["errorCode"] == "INVALID_EVENT"
    assert body["errorDetails"].startswith(f"{field}: "), body
    _nothing_stored()


BAD_BODIES = {
    "targetingKey missing": ({"events": [GOOD]}, "targetingKey"),
    "targetingKey empty": ({"targetingKey": "", "events": [GOOD]}, "targetingKey"),
    "targetingKey over 256": ({"targetingKey": "k" * 257, "events": [GOOD]}, "targetingKey"),
    "targetingKey a number": ({"targetingKey": 42, "events": [GOOD]}, "targetingKey"),
    "targetingKey with NUL": ({"targetingKey": "d\u0000", "events": [GOOD]}, "targetingKey"),
    "events missing": ({"targetingKey": "d"}, "events"),
    "events an object": ({"targetingKey": "d", "events": {"0": GOOD}}, "events"),
    "unknown field": ({"targetingKey": "d", "events": [GOOD], "context": {}}, "context"),
    "empty body": ({}, "targetingKey"),
    "consent unknown": ({"targetingKey": "d", "events": [GOOD], "consent": "yes"}, "consent"),
    "consent null": ({"targetingKey": "d", "events": [GOOD], "consent": None}, "consent"),
}


@pytest.mark.parametrize(("body", "field"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_events__bad_body__400_naming_field(api, client_key, flags, body, field) -> None:
    response = api("POST", "/api/v1/events", client_key, body)

    assert response.status_code == 400, response.content
    assert response.json()["errorDetails"].startswith(f"{field}: ")
    _nothing_stored()


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"targetingKey": "d", "events": [{"ms": NaN}]}',
        b'{"targetingKey": "d", "events": [{"ms": 1e400}]}',
        b"[1, 2]",
        b'{"targetingKey": "d", "events": [',
    ],
    ids=["text", "NaN", "infinite", "array", "truncated"],
)
def test_events__not_a_json_object__400_parse_error(api, client_key, flags, raw) -> None:
    response = api("POST", "/api/v1/events", client_key, raw)

    assert response.status_code == 400
    assert response.json()["errorCode"] == "PARSE_ERROR"
    assert response.json()["errorDetails"].startswith("body: ")
    _nothing_stored()


def test_events__over_1000_events__400_naming_events(api, client_key, flags, settings) -> None:
    settings.EDGEFLAGS_MAX_BODY_BYTES = 1024 * 1024  # so that the event count is what fails
    events = [{**GOOD, "id": f"e{i}"} for i in range(1001)]

    response = api("POST", "/api/v1/events", client_key, {"targetingKey": "d", "events": events})

    assert response.status_code == 400
    assert response.json()["errorDetails"] == "events: more than 1000 events in one batch"
    _nothing_stored()


def test_events__body_over_limit__413(api, client_key, flags, settings) -> None:
    settings.EDGEFLAGS_EVENTS_MAX_BODY_BYTES = 64 * 1024
    events = [{**GOOD, "id": f"event-{i:058d}"} for i in range(1000)]

    response = api("POST", "/api/v1/events", client_key, {"targetingKey": "d", "events": events})

    assert response.status_code == 413
    assert response.json()["errorDetails"].startswith("body: larger than")
    _nothing_stored()


def test_events__1000_events_with_uuid_ids__accepted_under_default_limit(send, flags) -> None:
    events = [{**GOOD, "id": f"{i:08d}-0000-4000-8000-000000000000"} for i in range(1000)]

    response = send("d", events)

    assert response.status_code == 202
    assert response.json() == {"accepted": 1000, "duplicates": 0, "uncounted": 0}


def test_events__valid_batch__202_and_one_buffer_entry(send, flags, buffer_mode) -> None:
    event = Events()
    batch = [
        event("exposure"),
        event("inference", ms=42.0),
        event("inference", ms=700, ok=False),
        event("crash"),
        event("energy", millijoules=12.5),
        event("feedback", rating=5),
    ]

    response = send("device-1", batch)

    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 6, "duplicates": 0, "uncounted": 0}
    assert buffered_count() == 1


@pytest.mark.parametrize("state", ["pending", "denied", False])
def test_events__consent_not_granted__202_nothing_stored_or_counted(
    api, client_key, environment, flags, buffer_mode, state
) -> None:
    event = Events()
    body = {**_body(environment, [event("exposure"), event("crash")], "device-1"), "consent": state}

    response = api("POST", "/api/v1/events", client_key, body)

    assert response.status_code == 202, response.content
    named = "denied" if state is False else state
    assert response.json() == {
        "accepted": 0,
        "duplicates": 0,
        "uncounted": 2,
        "uncountedReason": f"consent {named}: nothing was stored",
    }
    _nothing_stored()


def test_events__consent_denied__the_clients_profile_forgotten(
    api, client_key, environment, flags
) -> None:
    from capability_probe.models import ClientProfile
    from capability_probe.schema import parse_probe
    from capability_probe.services import probe_record

    probe = {"probeId": "p-1", "clientId": "device-1", "device": {"memoryGb": 8}}
    probe_record(probe=parse_probe(probe), environment_id=environment.pk)
    granted = {**_body(environment, [Events()("exposure")], "device-1"), "consent": "granted"}
    denied = {**_body(environment, [Events()("exposure")], "device-1"), "consent": "denied"}

    kept = api("POST", "/api/v1/events", client_key, granted)
    profiles_after_granted = ClientProfile.objects.count()
    forgot = api("POST", "/api/v1/events", client_key, denied)

    assert kept.json()["accepted"] == 1
    assert profiles_after_granted == 1
    assert forgot.status_code == 202, forgot.content
    assert not ClientProfile.objects.exists()


def test_events__redis_buffer__intake_asks_the_database_nothing(
    api, client_key, flags, django_assert_num_queries
) -> None:
    # The environment's id travels with the held snapshot: intake never looks it up.
    event = Events()
    api("POST", "/api/v1/events", client_key, _body(flags, [event("exposure")]))  # loads keys
    body = _body(flags, [event("exposure"), event("inference", ms=42.0)])

    with django_assert_num_queries(0):
        response = api("POST", "/api/v1/events", client_key, body)

    assert response.status_code == 202, response.content
    assert buffered_count() == 2


def _buffered_payloads(buffer_mode: str) -> list[dict[str, Any]]:
    if buffer_mode == "redis":
        return [orjson.loads(body) for _, body in redis_peek(100).entries]
    return list(TelemetryBatch.objects.values_list("payload", flat=True))


def test_events__timestamps__normalised_to_epoch_seconds_and_client_hashed(
    send, flags, buffer_mode
) -> None:
    event = Events()
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    iso = event("exposure", timestamp=at.isoformat().replace("+00:00", "Z"))
    millis = event("exposure", timestamp=int(at.timestamp() * 1000) + 500)
    naive = event("exposure", timestamp=at.replace(tzinfo=None).isoformat())
    before = time.time()

    assert send("device-raw-id-7", [iso, millis, naive]).status_code == 202

    (payload,) = _buffered_payloads(buffer_mode)
    assert [e["ts"] for e in payload["events"]] == [
        at.timestamp(),
        at.timestamp() + 0.5,
        at.timestamp(),
    ]
    assert payload["client"] == client_hash("device-raw-id-7")
    assert before <= payload["received"] <= time.time()
    assert "device-raw-id-7" not in json.dumps(payload)
    assert "id" not in payload["events"][0]


def test_events__resent_batch__duplicates_dropped(send, flags, buffer_mode) -> None:
    before = scrape()
    event = Events()
    first = [event("exposure"), event("inference", ms=10)]
    assert send("device-1", first).json() == {"accepted": 2, "duplicates": 0, "uncounted": 0}

    again = send("device-1", first)
    overlapping = send("device-1", [first[1], event("crash")])

    assert again.status_code == 202
    assert again.json() == {"accepted": 0, "duplicates": 2, "uncounted": 0}
    assert overlapping.json() == {"accepted": 1, "duplicates": 1, "uncounted": 0}
    assert buffered_count() == 2  # the resend added no entry; the overlap only its new event
    (_, second) = _buffered_payloads(buffer_mode)
    assert [e["type"] for e in second["events"]] == ["crash"]
    after = scrape()
    for outcome, n in {"accepted": 3, "duplicate": 3, "uncounted": 0}.items():
        name = "edgeflags_events_total"
        assert total(after, name, outcome=outcome) - total(before, name, outcome=outcome) == n


def test_events__same_id_twice_in_a_batch__second_is_a_duplicate(send, flags, buffer_mode) -> None:
    event = Events()
    one = event("exposure")

    response = send("device-1", [one, dict(one)])

    assert response.json() == {"accepted": 1, "duplicates": 1, "uncounted": 0}


def test_events__ids_are_per_environment__same_id_elsewhere_is_new(
    api, flags, buffer_mode, publish
) -> None:
    from access.api_keys import api_key_create
    from rollout.services import environment_create

    staging = publish(lambda: environment_create(key="staging"))
    staging_key = publish(lambda: api_key_create(environment=staging, scope="client", name="s"))[1]
    production_key = publish(lambda: api_key_create(environment=flags, scope="client", name="p"))[1]

    first = api("POST", "/api/v1/events", production_key, _body(flags, [GOOD]))
    second = api("POST", "/api/v1/events", staging_key, _body(staging, [GOOD]))

    assert first.json() == second.json() == {"accepted": 1, "duplicates": 0, "uncounted": 0}


def test_events__empty_list__202_nothing_stored(send, flags) -> None:
    response = send("device-1", [])

    assert response.status_code == 202
    assert response.json() == {"accepted": 0, "duplicates": 0, "uncounted": 0}
    _nothing_stored()


def test_events__no_key__401(api, flags) -> None:
    response = api("POST", "/api/v1/events", None, {"targetingKey": "d", "events": [GOOD]})

    assert response.status_code == 401
    assert response.json()["errorCode"] == "UNAUTHORIZED"


def test_events__unknown_key__401(api, flags) -> None:
    response = api("POST", "/api/v1/events", "nope", {"targetingKey": "d", "events": [GOOD]})

    assert response.status_code == 401


def test_events__x_api_key_header__accepted(api, client_key, flags) -> None:
    response = api(
        "POST", "/api/v1/events", None, _body(flags, [GOOD]), **{"X-API-Key": client_key}
    )

    assert response.status_code == 202


def test_events__server_key__accepted_like_evaluate(api, server_key, flags) -> None:
    response = api("POST", "/api/v1/events", server_key, _body(flags, [GOOD]))

    assert response.status_code == 202


def test_events__get__405(api, client_key, flags) -> None:
    assert api("GET", "/api/v1/events", client_key).status_code == 405


def test_events__redis_unreachable__503_nothing_acknowledged(send, flags, settings) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = send("device-1", [GOOD])

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["errorDetails"].startswith("buffer: ")
    assert SeenEvent.objects.count() == 0


def test_events__rate_limited__429(send, flags, monkeypatch) -> None:
    from api import client

    monkeypatch.setattr(client.rate_limits.per_key, "retry_after", lambda key, now=None: 3)

    response = send("device-1", [GOOD])

    assert response.status_code == 429
    assert response["Retry-After"] == "3"
