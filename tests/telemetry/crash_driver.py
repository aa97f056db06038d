"""The child-process side of the fold crash test, and the batches it sends.

    python -m tests.telemetry.crash_driver setup|fill N|fold|totals

runs against whatever DATABASE_URL / REDIS_URL / EDGEFLAGS_* the environment gives
(config.settings), like the worker it races with.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

FLAG = "smart-compose"
SEGMENT = "edge-ready"
SEGMENT_IDENTITY = 1
P95_MS = 100.0
CLIENTS = 300


def base_hour() -> datetime:
    """Three hours before the current hour: every event falls in it or the next one."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


def batch(i: int, base: datetime) -> tuple[str, list[dict[str, Any]]]:
    """Batch `i`: (targeting key, raw events as a client sends them)."""
    client = f"device-{i % CLIENTS}"
    at = base + timedelta(hours=(i // 7) % 2, minutes=(i // CLIENTS) % 50, seconds=1)
    common = {
        "flag": FLAG,
        "segment": SEGMENT,
        "arm": "treatment" if i % 2 else "control",  # CLIENTS is even: one arm per client
        "timestamp": int(at.timestamp() * 1000),
    }
    events = [
        {"id": f"{i}-x1", "type": "exposure", **common},
        {"id": f"{i}-x2", "type": "exposure", **common},
        {"id": f"{i}-i1", "type": "inference", "ms": 50 + (i % 5) * 40, "ok": i % 7 != 3, **common},
        {"id": f"{i}-i2", "type": "inference", "ms": 60, **common},
    ]
    if i % 11 == 0:
        events.append({"id": f"{i}-c", "type": "crash", **common})
    return client, events


def _setup() -> int:
    from rollout.models import FlagState, RolloutPlan, SegmentRollout
    from rollout.services import environment_create, flag_create
    from segments.models import CapabilitySegment

    CapabilitySegment.objects.create(identity=SEGMENT_IDENTITY, key=SEGMENT, label=SEGMENT)
    environment = environment_create(key="production")
    flag_create(key=FLAG)
    plan = RolloutPlan.objects.create(
        flag_state=FlagState.objects.get(flag__key=FLAG, environment=environment)
    )
    SegmentRollout.objects.update_or_create(
        plan=plan, segment_identity=SEGMENT_IDENTITY, defaults={"latency_p95_ms": P95_MS}
    )
    return environment.pk


def _fill(count: int, base: datetime) -> int:
    from access.client_trust import token_verifier
    from capability_probe.services import client_hash
    from rollout.models import Environment
    from telemetry.buffer import telemetry_append
    from telemetry.schema import parse_batch
    from tests.support.telemetry import served

    environment = Environment.objects.get(key="production")
    accepted = 0
    for i in range(count):
        client, events = batch(i, base)
        now = time.time()
        parsed = parse_batch(
            {"targetingKey": client, "events": served(environment, client, events)},
            flags={FLAG},
            segments={SEGMENT: SEGMENT_IDENTITY},
            tokens=lambda key, at=now: token_verifier(
                environment_id=environment.pk, targeting_key=key, now=at
            ),
            now=now,
        )
        outcome = telemetry_append(
            environment_id=environment.pk,
            client=client_hash(client),
            batch=parsed,
            received_at=now,
        )
        accepted += outcome.accepted
    return accepted


def _fold_rest(timeout_s: float = 120.0) -> int:
    from telemetry.aggregates import telemetry_fold
    from telemetry.buffer import buffered_count

    deadline = time.monotonic() + timeout_s
    folded = 0
    while buffered_count():
        if time.monotonic() > deadline:
            raise SystemExit("the buffer did not empty")
        outcome = telemetry_fold()
        folded += outcome.batches
        if outcome.busy:  # the killed worker's connection is not gone yet
            time.sleep(0.2)
    return folded


def _totals() -> dict[str, Any]:
    from django.db.models import Sum

    from rollout.models import FailureMark, MetricBucket

    fields = [
        "client_exposures", "clients", "failures", "latency_n", "latency_sum", "latency_sumsq",
        "inference_ms_n", "inference_ms_sum",
    ]  # fmt: skip
    sums = MetricBucket.objects.aggregate(**{name: Sum(name) for name in fields})
    return {**sums, "failure_marks": FailureMark.objects.count()}


def main(argv: list[str]) -> None:
    import django

    django.setup()
    command = argv[0]
    if command == "setup":
        result: Any = _setup()
    elif command == "fill":
        result = _fill(int(argv[1]), datetime.fromisoformat(argv[2]))
    elif command == "fold":
        result = _fold_rest()
    elif command == "totals":
        result = _totals()
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
