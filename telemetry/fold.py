"""Client batches -> per-bucket deltas of the guardrail aggregates (pure Python, no Django).

A batch is one client's report. Within it, events are grouped by (flag, segment identity,
arm, minute); each group is one client observation per metric (docs/telemetry.md,
"The fold"):

- latency: the share of the group's inferences slower than the segment's frozen p95;
- energy: the mean millijoules per event; feedback: the mean rating;
- failure: a crash or a failed inference makes the client a failure candidate for the flag
  and the hour; the database side counts each (client, flag, hour) once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

# (environment id, flag, segment identity, arm, minute as epoch seconds)
BucketKey = tuple[int, str, int, str, int]
# (environment id, flag, client hash, hour as epoch seconds)
FailureKey = tuple[int, str, str, int]
# (environment id, flag, segment identity) -> frozen p95 of inference time in ms
ThresholdKey = tuple[int, str, int]


@dataclass
class BucketDelta:
    """What one fold adds to a MetricBucket row (field names match the model)."""

    client_exposures: int = 0
    clients: int = 0
    latency_n: int = 0
    latency_sum: float = 0.0
    latency_sumsq: float = 0.0
    inference_ms_n: int = 0
    inference_ms_sum: float = 0.0
    energy_n: int = 0
    energy_sum: float = 0.0
    energy_sumsq: float = 0.0
    rating_n: int = 0
    rating_sum: float = 0.0
    rating_sumsq: float = 0.0

    def increments(self) -> dict[str, float]:
        """The non-zero fields, by name."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if value}


@dataclass
class Folded:
    """Deltas per bucket, and each failed (client, flag, hour) with the bucket it counts in."""

    buckets: dict[BucketKey, BucketDelta] = field(default_factory=dict)
    failures: dict[FailureKey, BucketKey] = field(default_factory=dict)


@dataclass
class _Group:
    exposures: int = 0
    inference_ms: list[float] = field(default_factory=list)
    millijoules: list[float] = field(default_factory=list)
    ratings: list[int] = field(default_factory=list)
    failed: bool = False


def _observe(delta: BucketDelta, metric: str, value: float) -> None:
    setattr(delta, f"{metric}_n", getattr(delta, f"{metric}_n") + 1)
    setattr(delta, f"{metric}_sum", getattr(delta, f"{metric}_sum") + value)
    setattr(delta, f"{metric}_sumsq", getattr(delta, f"{metric}_sumsq") + value * value)


def _groups(events: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int, str, int], _Group]:
    groups: dict[tuple[str, int, str, int], _Group] = {}
    for event in events:
        minute = int(event["ts"] // 60) * 60
        segment = event["segment"]
        if type(segment) is not int:
            # Buffered before segments were counted by identity: the fold quarantines it.
            raise TypeError(f"segment {segment!r} is not a segment identity")
        key = (event["flag"], segment, event["arm"], minute)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group()
        kind = event["type"]
        if kind == "exposure":
            group.exposures += 1
        elif kind == "inference":
            group.inference_ms.append(float(event["ms"]))
            if not event.get("ok", True):
                group.failed = True
        elif kind == "crash":
            group.failed = True
        elif kind == "energy":
            group.millijoules.append(float(event["millijoules"]))
        elif kind == "feedback":
            group.ratings.append(int(event["rating"]))
    return groups


def fold_batch(
    folded: Folded, batch: Mapping[str, Any], thresholds: Mapping[ThresholdKey, float]
) -> None:
    """Add one client's batch to `folded`."""
    environment = int(batch["env"])
    client = str(batch["client"])
    for (flag, segment, arm, minute), group in _groups(batch["events"]).items():
        key: BucketKey = (environment, flag, segment, arm, minute)
        delta = folded.buckets.get(key)
        if delta is None:
            delta = folded.buckets[key] = BucketDelta()
        delta.clients += 1
        delta.client_exposures += group.exposures
        if group.inference_ms:
            delta.inference_ms_n += len(group.inference_ms)
            delta.inference_ms_sum += sum(group.inference_ms)
            p95 = thresholds.get((environment, flag, segment))
            if p95 is not None:
                slow = sum(1 for ms in group.inference_ms if ms > p95)
                _observe(delta, "latency", slow / len(group.inference_ms))
        if group.millijoules:
            _observe(delta, "energy", sum(group.millijoules) / len(group.millijoules))
        if group.ratings:
            _observe(delta, "rating", sum(group.ratings) / len(group.ratings))
        if group.failed:
            failure: FailureKey = (environment, flag, client, minute - minute % 3600)
            first = folded.failures.get(failure)
            if first is None or minute < first[4]:
                folded.failures[failure] = key


def fold_batches(
    batches: Iterable[Mapping[str, Any]], thresholds: Mapping[ThresholdKey, float]
) -> Folded:
    """Deltas of many batches (each one client's report), in the order given."""
    folded = Folded()
    for batch in batches:
        fold_batch(folded, batch, thresholds)
    return folded
