"""Decision tokens over HTTP: served with every rollout decision, checked on every event."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import pytest
from django.conf import settings

from access.api_keys import api_key_create
from access.decision_tokens import TokenIssuer
from rollout.models import MetricBucket
from rollout.services import environment_create, flag_create
from telemetry.aggregates import telemetry_fold
from telemetry.buffer import buffered_count
from tests.support.telemetry import _telemetry_isolation  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db

FLAG = "smart-compose"


def _metadata(api, key: str, targeting_key: str = "user-1") -> dict[str, Any]:
    context = {"targetingKey": targeting_key, "saveData": True}
    response = api("POST", "/api/v1/evaluate", key, {"context": context})
    return dict(response.json()["flags"][FLAG]["metadata"])


def _send(api, key: str, token: str, *, targeting_key: str = "user-1", **fields: Any) -> Any:
    event = {"id": f"e-{time.monotonic_ns()}", "type": "inference", "ms": 12.0, "flag": FLAG,
             "decisionToken": token, **fields}  # fmt: skip
    return api("POST", "/api/v1/events", key, {"targetingKey": targeting_key, "events": [event]})


def _refused(response: Any, field: str) -> str:
    assert response.status_code == 400, response.content
    details = str(response.json()["errorDetails"])
    assert details.startswith(f"events[0].{field}: "), details
    return details


def test_evaluate__rollout_decision__carries_a_short_primitive_token(api, client_key, plan) -> None:
    metadata = _metadata(api, client_key)

    token = metadata["decisionToken"]
    assert isinstance(token, str)
    assert len(token) < 64
    assert "user-1" not in token
    # the segment by its identity (save-data's is 0), so a rename does not void the token
    assert metadata["segment"] == "save-data"
    assert token.split(".")[3] == "0"
    assert token.split(".")[4] == metadata["rung"]  # the rung served (saveData: lite)
    # OFREP answers carry it too, and the same client within the hour gets the same bytes
    ofrep = api("POST", f"/ofrep/v1/evaluate/flags/{FLAG}", client_key,
                {"context": {"targetingKey": "user-1", "saveData": True}}).json()  # fmt: skip
    assert ofrep["metadata"]["decisionToken"] == token


def test_evaluate__no_targeting_key_or_no_plan__no_token(api, client_key, plan, publish) -> None:
    publish(lambda: flag_create(key="plain-flag"))
    no_key = api("POST", "/api/v1/evaluate", client_key, {"context": {"saveData": True}}).json()
    keyed = api("POST", "/api/v1/evaluate", client_key,
                {"context": {"targetingKey": "u", "saveData": True}}).json()  # fmt: skip

    assert "decisionToken" not in no_key["flags"][FLAG]["metadata"]
    assert "decisionToken" not in keyed["flags"]["plain-flag"]["metadata"]


def test_events__served_token__counted_in_the_tokens_arm(api, client_key, plan) -> None:
    metadata = _metadata(api, client_key)

    response = _send(api, client_key, metadata["decisionToken"])
    telemetry_fold()

    assert response.status_code == 202, response.content
    bucket = MetricBucket.objects.get()
    assert (bucket.segment_identity, bucket.arm, bucket.inference_ms_n) == (
        0,
        metadata["arm"],
        1,
    )


def test_events__tampered_token__refused(api, client_key, plan) -> None:
    token = _metadata(api, client_key)["decisionToken"]
    head, _, mac = token.rpartition(".")
    version, issued, bits, segment, rung, model = head.split(".", 5)
    other_arm = ("c" if bits[0] == "t" else "t") + bits[1]
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for forged in (
        f"{version}.{issued}.{other_arm}.{segment}.{rung}.{model}.{mac}",  # the other arm
        f"{version}.{issued}.n{bits[1]}.{segment}.{rung}.{model}.{mac}",  # outside the arms
        f"{version}.{issued}.{bits}.1.{rung}.{model}.{mac}",  # another segment
        f"{version}.{issued}.{bits[0]}1.{segment}.{rung}.{model}.{mac}",  # the signed bit set
        f"{version}.{issued}.{bits}.{segment}.{rung}.{model}.{flipped}",  # the MAC itself
        f"{version}.{int(issued, 16) + 3600:x}.{bits}.{segment}.{rung}.{model}.{mac}",  # later
        f"{version}.{issued}.{bits}.{segment}.cloud.{model}.{mac}",  # another rung
        f"{version}.{issued}.{bits}.{segment}.{rung}.9.9.9.{mac}",  # another model version
        f"2.{issued}.{bits}.{segment}.{mac}",  # the previous format, same MAC
    ):
        assert "does not match" in _refused(_send(api, client_key, forged), "decisionToken")
    assert buffered_count() == 0


def test_events__token_of_the_previous_format__still_counted(api, client_key, environment, plan):
    from access.decision_tokens import PREVIOUS_VERSION, _Keyed

    secret = settings.EDGEFLAGS_DECISION_TOKEN_SECRET.encode()
    issued = f"{int(time.time()) // 3600 * 3600:x}"
    message = (
        f"edgeflags-decision/2|{environment.pk}|".encode()
        + b"6:user-1|13:smart-compose|1:0|"
        + f"{issued}.c0".encode()
    )
    assert _Keyed  # the verifier's own helper is not used here: the MAC is computed by hand
    mac = base64.urlsafe_b64encode(hmac.new(secret, message, hashlib.sha256).digest()[:12])
    token = f"{PREVIOUS_VERSION}.{issued}.c0.0.{mac.decode()}"

    response = _send(api, client_key, token)

    assert response.status_code == 202, response.content


def test_events__expired_token__refused(api, client_key, environment, plan) -> None:
    lifetime = settings.EDGEFLAGS_DECISION_TOKEN_TTL_S
    old = TokenIssuer(
        secret=settings.EDGEFLAGS_DECISION_TOKEN_SECRET.encode(),
        environment_id=environment.pk,
        targeting_key="user-1",
        signed=False,
        now=time.time() - lifetime - 2 * 3600,
        lifetime_s=lifetime,
    ).issue(FLAG, 0, "control")

    assert "expired" in _refused(_send(api, client_key, old), "decisionToken")


def test_events__token_of_another_flag__refused(api, client_key, plan, publish) -> None:
    publish(lambda: flag_create(key="lead-scoring"))
    token = _metadata(api, client_key)["decisionToken"]

    response = _send(api, client_key, token, flag="lead-scoring")

    assert "does not match" in _refused(response, "decisionToken")


def test_events__token_of_another_client__refused(api, client_key, plan) -> None:
    token = _metadata(api, client_key, "victim")["decisionToken"]

    response = _send(api, client_key, token, targeting_key="attacker")

    assert "does not match" in _refused(response, "decisionToken")


def test_events__token_of_another_environment__refused(api, client_key, plan, publish) -> None:
    staging = publish(lambda: environment_create(key="staging"))
    staging_key = publish(lambda: api_key_create(environment=staging, scope="client", name="s"))[1]
    publish(lambda: flag_create(key="unused"))  # publishes staging with smart-compose in it
    token = _metadata(api, client_key)["decisionToken"]

    assert "does not match" in _refused(_send(api, staging_key, token), "decisionToken")


def test_events__claims_differing_from_the_token__refused(api, client_key, plan) -> None:
    metadata = _metadata(api, client_key)
    token = metadata["decisionToken"]
    other_arm = "treatment" if metadata["arm"] == "control" else "control"

    assert "not the segment" in _refused(
        _send(api, client_key, token, segment="edge-ready"), "segment"
    )
    assert "not the arm" in _refused(_send(api, client_key, token, arm=other_arm), "arm")
    agreeing = _send(api, client_key, token, segment="save-data", arm=metadata["arm"])
    assert agreeing.status_code == 202


def test_events__1000_invented_segment_keys__400_naming_the_event_no_bucket(
    api, client_key, plan
) -> None:
    token = _metadata(api, client_key)["decisionToken"]
    events = [
        {"id": f"inv-{i}", "type": "exposure", "flag": FLAG, "segment": f"invented-{i}",
         "decisionToken": token} for i in range(1000)
    ]  # fmt: skip
    untokened = [{k: v for k, v in e.items() if k != "decisionToken"} for e in events]

    with_token = api("POST", "/api/v1/events", client_key,
                     {"targetingKey": "user-1", "events": events})  # fmt: skip
    without = api("POST", "/api/v1/events", client_key,
                  {"targetingKey": "user-1", "events": untokened})  # fmt: skip
    telemetry_fold()

    assert "unknown segment 'invented-0'" in _refused(with_token, "segment")
    _refused(without, "decisionToken")
    assert MetricBucket.objects.count() == 0
    assert buffered_count() == 0


def test_token__mac__is_truncated_hmac_sha256_of_the_documented_message() -> None:
    secret = b"s" * 100  # longer than a SHA-256 block: HMAC hashes such keys first
    token = TokenIssuer(
        secret=secret, environment_id=7, targeting_key="user-1", signed=True, now=1_800_000_000,
        lifetime_s=24 * 3600,
    ).issue(FLAG, 1, "treatment", "edge", "3.0.0")  # fmt: skip

    head, _, mac = token.rpartition(".")
    version, issued, bits, segment, rung, model = head.split(".", 5)
    message = (
        b"edgeflags-decision/3|7|6:user-1|13:smart-compose|1:1|"
        + f"{issued}.{bits}".encode()
        + b"|4:edge|5:3.0.0"
    )
    expected = hmac.new(secret, message, hashlib.sha256).digest()[:12]
    assert (version, bits, segment, rung, model) == ("3", "t1", "1", "edge", "3.0.0")
    assert int(issued, 16) == 1_800_000_000 // 3600 * 3600
    assert base64.urlsafe_b64decode(mac) == expected
