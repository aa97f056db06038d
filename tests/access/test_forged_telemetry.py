"""Forged telemetry against a healthy segment, mounted through the HTTP API as the issue did.

The segment is `save-data` of smart-compose (the one every client with saveData lands in,
so no capability model is needed), ramping at 50 % with three healthy hours of aggregates.
The attacker holds the public client key and invents 150 targeting keys.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone

from access.decision_tokens import identity_hash
from access.signed_identities import (
    environment_identity_secret_rotate,
    environment_signed_identities_require,
)
from rollout.audit import Actor
from rollout.controller import rollout_tick
from rollout.models import AuditEntry, Environment, MetricBucket, SegmentRollout
from rollout.rollouts import rollout_plan_create
from telemetry.aggregates import telemetry_fold
from telemetry.buffer import buffered_count
from telemetry.exposure import counter, exposure_flush
from tests.support import rollouts
from tests.support.rollouts import rollout_row
from tests.support.telemetry import _telemetry_isolation  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db

SEGMENT = "save-data"
FLAG = "smart-compose"
ATTACKERS = 150
STAGES = [
    {"percentage": 50, "minDwellHours": 2, "minTreatmentClients": 30, "maxDurationHours": 72},
    {"percentage": 100, "minDwellHours": 0, "minTreatmentClients": 0, "maxDurationHours": 72},
]


@pytest.fixture
def healthy(edge_flag, feed, publish, monkeypatch) -> Environment:
    """save-data ramping at 50 % for three hours, healthy in both arms (1 % crash each)."""
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    monkeypatch.setattr(rollouts, "START", start)  # where `feed` writes its hours
    publish(
        lambda: rollout_plan_create(state=edge_flag, actor=Actor("test"), now=start, stages=STAGES)
    )
    for hour in range(3):
        feed(SEGMENT, hour, clients=(400, 400), failures=(4, 4), seed=11)
    return edge_flag.environment


def _row() -> SegmentRollout:
    return rollout_row(SEGMENT)


def _totals() -> dict[str, Any]:
    return MetricBucket.objects.aggregate(
        rows=Sum("clients"), failures=Sum("failures"), exposures=Sum("exposures")
    )


def _decision(api, key: str, targeting_key: str, **context: Any) -> dict[str, Any]:
    body = {"context": {"targetingKey": targeting_key, "saveData": True, **context}}
    response = api("POST", "/api/v1/evaluate", key, body)
    assert response.status_code == 200, response.content
    return dict(response.json()["flags"][FLAG]["metadata"])


def _crash_treatment(api, key: str, targeting_key: str, metadata: dict[str, Any]) -> Any:
    """What the attacker sends for a key the server put in treatment: a crash, with the token."""
    events = [
        {"id": f"{targeting_key}-crash", "type": "crash", "flag": FLAG,
         "decisionToken": metadata["decisionToken"]},
    ]  # fmt: skip
    return api("POST", "/api/v1/events", key, {"targetingKey": targeting_key, "events": events})


def _tick() -> None:
    exposure_flush()
    telemetry_fold()
    rollout_tick(timezone.now() + timedelta(minutes=1))


def test_forged_telemetry__claimed_arms_without_tokens__refused_segment_advances(
    api, client_key, healthy, publish
) -> None:
    # Given the attack: per invented key, a treatment crash and forged control exposures
    before = _totals()
    for n in range(ATTACKERS):
        events = [{"id": f"forged-{n}-crash", "type": "crash", "flag": FLAG, "segment": SEGMENT,
                   "arm": "treatment"}]  # fmt: skip
        events += [
            {"id": f"forged-{n}-x{i}", "type": "exposure", "flag": FLAG, "segment": SEGMENT,
             "arm": "control"} for i in range(5)
        ]  # fmt: skip
        response = api(
            "POST", "/api/v1/events", client_key, {"targetingKey": f"bot-{n}", "events": events}
        )
        # Then every batch is refused, naming the missing token
        assert response.status_code == 400, response.content
        assert response.json()["errorDetails"].startswith("events[0].decisionToken: required")

    assert buffered_count() == 0
    publish(_tick)

    assert _totals() == before
    assert (_row().state, _row().percentage) == ("complete", 100)  # healthy: it advanced
    assert not AuditEntry.objects.filter(action="rollout.rollback").exists()


def test_forged_telemetry__served_tokens_but_claimed_treatment__refused(
    api, client_key, healthy
) -> None:
    # Given an attacker who evaluates first and keeps the token, but claims treatment anyway
    refused = 0
    for n in range(40):
        metadata = _decision(api, client_key, f"bot-{n}")
        if metadata["arm"] == "treatment":
            continue
        events = [{"id": f"c-{n}", "type": "crash", "flag": FLAG, "segment": SEGMENT,
                   "arm": "treatment", "decisionToken": metadata["decisionToken"]}]  # fmt: skip
        response = api(
            "POST", "/api/v1/events", client_key, {"targetingKey": f"bot-{n}", "events": events}
        )
        assert response.status_code == 400
        assert response.json()["errorDetails"].startswith("events[0].arm: 'treatment' is not")
        refused += 1

    assert refused > 5
    assert buffered_count() == 0


def test_forged_telemetry__signed_mode_invented_keys__nothing_counted_segment_advances(
    api, client_key, healthy, publish
) -> None:
    # Given production requires signed identities (the attacker has no identity secret)
    publish(lambda: environment_identity_secret_rotate(environment=healthy, actor=Actor("t")))
    publish(
        lambda: environment_signed_identities_require(
            environment=healthy, required=True, actor=Actor("t")
        )
    )
    counter.clear()
    before = _totals()

    # When 150 invented keys evaluate and report a crash for every treatment decision
    answers = []
    for n in range(ATTACKERS):
        metadata = _decision(api, client_key, f"bot-{n}")
        assert metadata["decisionToken"].split(".")[2].endswith("0")  # the unsigned bit
        if metadata["arm"] == "treatment":
            answers.append(_crash_treatment(api, client_key, f"bot-{n}", metadata).json())

    # Then each batch is accepted, not counted, and says why; the server counted no exposure
    assert len(answers) > 40
    assert {(a["accepted"], a["uncounted"]) for a in answers} == {(0, 1)}
    assert all(a["uncountedReason"].startswith("unsigned identity") for a in answers)
    assert counter.pending() == {}
    publish(_tick)
    assert _totals() == before
    assert (_row().state, _row().percentage) == ("complete", 100)  # healthy: it advanced
    assert not AuditEntry.objects.filter(action="rollout.rollback").exists()


def test_forged_telemetry__signed_mode_signed_client__counted(
    api, client_key, healthy, publish
) -> None:
    secret = publish(
        lambda: environment_identity_secret_rotate(environment=healthy, actor=Actor("t"))
    )
    publish(
        lambda: environment_signed_identities_require(
            environment=healthy, required=True, actor=Actor("t")
        )
    )
    counter.clear()

    metadata = _decision(api, client_key, "user-1", identityHash=identity_hash(secret, "user-1"))
    answer = _crash_treatment(api, client_key, "user-1", metadata).json()

    assert metadata["decisionToken"].split(".")[2].endswith("1")
    assert (answer["accepted"], answer["uncounted"]) == (1, 0)
    assert sum(counter.pending().values()) == 1  # its exposure counts too


def test_forged_telemetry__default_mode_served_tokens__identity_cap_bounds_what_counts(
    api, client_key, healthy, settings
) -> None:
    # Without signed identities a script can evaluate invented keys and echo real tokens:
    # the per-address cap bounds how many of them count in an hour.
    settings.EDGEFLAGS_IDENTITY_CAP_PER_ADDRESS = 20
    answers = []
    for n in range(ATTACKERS):
        metadata = _decision(api, client_key, f"bot-{n}")
        if metadata["arm"] == "treatment":
            answers.append(_crash_treatment(api, client_key, f"bot-{n}", metadata).json())

    counted = [a for a in answers if a["accepted"]]
    capped = [a for a in answers if a["uncounted"]]
    assert len(counted) == 20
    assert len(capped) == len(answers) - 20 > 0
    assert all(a["uncountedReason"].startswith("identity cap") for a in capped)
    assert buffered_count() == 20


def test_forged_telemetry__default_mode_no_cap__rolls_back(
    api, client_key, healthy, settings, publish
) -> None:
    # The control experiment: the same attack with the caps lifted does roll the segment
    # back, so the tests above fail if tokens, caps or signed mode stop protecting it.
    settings.EDGEFLAGS_IDENTITY_CAP_PER_ADDRESS = 10_000
    for n in range(ATTACKERS):
        metadata = _decision(api, client_key, f"bot-{n}")
        if metadata["arm"] == "treatment":
            assert _crash_treatment(api, client_key, f"bot-{n}", metadata).status_code == 202

    publish(_tick)

    assert _row().state == "rolled_back"
