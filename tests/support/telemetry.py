"""Shared telemetry builders: a Redis key prefix per test (the autouse fixture a folder
opts into by importing it), both buffer modes, flags and thresholds, event batches."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from django.conf import settings

from access.decision_tokens import TokenIssuer
from rollout.models import Environment, FlagState, RolloutPlan, SegmentRollout
from rollout.selectors import segment_identities
from rollout.services import flag_create
from segments.models import CapabilitySegment
from telemetry.exposure import counter
from telemetry.schema import ARMS

# The buffer modes this run can exercise: the database always, Redis when the suite has one.
BUFFER_MODES = ["database", *(["redis"] if settings.REDIS_URL else [])]

FLAG = "smart-compose"
OTHER_FLAG = "lead-scoring"
SEGMENT = "edge-ready"
SEGMENT_IDENTITY = 1
P95_MS = 100.0


@pytest.fixture(autouse=True)
def _telemetry_isolation(settings: Any) -> Iterator[None]:
    """Keys of this test only in Redis; no background exposure writer; no leftover counts."""
    prefix = f"edgeflags-test-telemetry-{uuid.uuid4().hex[:12]}"
    settings.EDGEFLAGS_TELEMETRY_PREFIX = prefix
    settings.EDGEFLAGS_EXPOSURE_FLUSH_S = 0
    redis_url = settings.REDIS_URL  # tests may point REDIS_URL elsewhere meanwhile
    counter.clear()
    yield
    counter.clear()
    if redis_url:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture(params=BUFFER_MODES)
def buffer_mode(request: pytest.FixtureRequest, settings: Any) -> str:
    """Each test using it runs once per buffer mode (Redis mode only when Redis is there)."""
    if request.param == "database":
        settings.REDIS_URL = ""
    return str(request.param)


@pytest.fixture
def flags(environment: Environment, publish: Callable[..., Any]) -> Environment:
    """Two flags in the environment; FLAG's SEGMENT has a frozen p95 of P95_MS."""

    def create() -> None:
        CapabilitySegment.objects.get_or_create(
            identity=SEGMENT_IDENTITY, defaults={"key": SEGMENT, "label": SEGMENT}
        )
        flag_create(key=FLAG)
        flag_create(key=OTHER_FLAG)
        state = FlagState.objects.get(flag__key=FLAG, environment=environment)
        plan = RolloutPlan.objects.create(flag_state=state)
        SegmentRollout.objects.update_or_create(
            plan=plan, segment_identity=SEGMENT_IDENTITY, defaults={"latency_p95_ms": P95_MS}
        )

    publish(create)
    return environment


def hour_start(hours_ago: int) -> datetime:
    """The start of the hour `hours_ago` hours before the current one (UTC)."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=hours_ago)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Events:
    """Builds events with unique ids: `events.exposure(minute=...)`, `events.inference(...)`."""

    def __init__(self, flag: str = FLAG, segment: str = SEGMENT, arm: str = "treatment"):
        self.flag, self.segment, self.arm = flag, segment, arm
        self.next_id = 0

    def __call__(self, kind: str, at: datetime | None = None, **fields: Any) -> dict[str, Any]:
        self.next_id += 1
        event: dict[str, Any] = {
            "id": f"e-{uuid.uuid4().hex[:8]}-{self.next_id}",
            "type": kind,
            "flag": fields.pop("flag", self.flag),
            "segment": fields.pop("segment", self.segment),
            "arm": fields.pop("arm", self.arm),
        }
        if at is not None:
            event["timestamp"] = epoch_ms(at)
        event.update(fields)
        return event


def _served_segment(claim: Any, identities: dict[str, int]) -> int:
    """The identity of the claimed segment where the claim names one, else SEGMENT's."""
    known = isinstance(claim, str) and claim in identities
    return identities[claim] if known else identities.get(SEGMENT, SEGMENT_IDENTITY)


def served(
    environment: Environment, targeting_key: str, events: list[Any], *, signed: bool = False
) -> list[Any]:
    """`events`, each with the decisionToken the server would have served `targeting_key`
    for its flag in its (claimed, else SEGMENT's treatment) arm: what the server's own
    issuer gives, as evaluate would. Events that already carry one keep it."""
    issuer = TokenIssuer(
        secret=settings.EDGEFLAGS_DECISION_TOKEN_SECRET.encode(),
        environment_id=environment.pk,
        targeting_key=targeting_key,
        signed=signed,
        now=time.time(),
        lifetime_s=settings.EDGEFLAGS_DECISION_TOKEN_TTL_S,
    )
    identities = segment_identities()
    out: list[Any] = []
    for event in events:
        flag = event.get("flag") if isinstance(event, dict) else None
        if isinstance(flag, str) and "decisionToken" not in event:
            arm = event.get("arm") if event.get("arm") in ARMS else "treatment"
            segment = _served_segment(event.get("segment"), identities)
            event = {**event, "decisionToken": issuer.issue(flag, segment, arm)}
        out.append(event)
    return out


@pytest.fixture
def send(api: Callable[..., Any], client_key: str, environment: Environment) -> Callable[..., Any]:
    """POST a batch for a targeting key with the client key, its events carrying the tokens
    the server served that key (see `served`); returns the response."""

    def post(targeting_key: str, events: list[Any]) -> Any:
        body = {"targetingKey": targeting_key, "events": served(environment, targeting_key, events)}
        return api("POST", "/api/v1/events", client_key, body)

    return post
