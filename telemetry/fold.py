"""Client batches -> per-bucket deltas of the aggregates (pure Python, no Django).

A batch is one client's report. Within it, events are grouped by (flag, segment identity,
arm, rung, model version, minute), all of them the decision token's; each group is one
client observation per metric (docs/telemetry.md, "The fold"):

- latency: the share of the group's inferences slower than the segment's frozen p95;
- energy: the mean millijoules per event; feedback: the mean rating;
- acceptance: the share of the group's suggestions the user accepted; freshness: the mean
  hours since the on-device personalisation data was refreshed;
- failure: a crash or a failed inference makes the client a failure candidate for the flag
  and the hour; the database side counts each (client, flag, hour) once;
- model updates are counted as they come (full or delta, ok or failed, bytes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from rollout.histogram import inference_bin

# (environment id, flag, segment identity, arm, rung, model version, minute as epoch seconds)
BucketKey = tuple[int, str, int, str, str, str, int]
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
    acceptance_n: int = 0
    acceptance_sum: float = 0.0
    acceptance_sumsq: float = 0.0
    freshness_n: int = 0
    freshness_sum: float = 0.0
    freshness_sumsq: float = 0.0
    updates_full: int = 0
    updates_full_failed: int = 0
    updates_delta: int = 0
    updates_delta_failed: int = 0
    update_bytes_full: int = 0
    update_bytes_delta: int = 0
    histogram: dict[str, int] = field(default_factory=dict)  # INFERENCE_BINS column -> count

    def increments(self) -> dict[str, float]:
        """The non-zero fields, by name (histogram bins by their columns)."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "histogram"}
        values.update(self.histogram)
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
    suggestions: int = 0
    accepted: int = 0
    freshness_hours: list[float] = field(default_factory=list)
    updates: list[tuple[str, bool, int]] = field(default_factory=list)  # delivery, ok, bytes
    failed: bool = False


def _observe(delta: BucketDelta, metric: str, value: float) -> None:
    setattr(delta, f"{metric}_n", getattr(delta, f"{metric}_n") + 1)
    setattr(delta, f"{metric}_sum", getattr(delta, f"{metric}_sum") + value)
    setattr(delta, f"{metric}_sumsq", getattr(delta, f"{metric}_sumsq") + value * value)


GroupKey = tuple[str, int, str, str, str, int]  # flag, segment, arm, rung, model, minute


def _groups(events: Iterable[Mapping[str, Any]]) -> dict[GroupKey, _Group]:
    groups: dict[GroupKey, _Group] = {}
    for event in events:
        minute = int(event["ts"] // 60) * 60
        segment = event["segment"]
        if type(segment) is not int:
            # Buffered before segments were counted by identity: the fold quarantines it.
            raise TypeError(f"segment {segment!r} is not a segment identity")
        key = (
            event["flag"],
            segment,
            event["arm"],
            event.get("rung", ""),
            event.get("model", ""),
            minute,
        )
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
        elif kind == "suggestion":
            group.suggestions += 1
            group.accepted += 1 if event["accepted"] else 0
        elif kind == "freshness":
            group.freshness_hours.append(float(event["hours"]))
        elif kind == "model_update":
            group.updates.append((event["delivery"], bool(event["ok"]), int(event["bytes"])))
    return groups


def _count_updates(delta: BucketDelta, updates: list[tuple[str, bool, int]]) -> None:
    for delivery, ok, size in updates:
        if delivery == "delta":
            delta.updates_delta += 1
            delta.updates_delta_failed += 0 if ok else 1
            delta.update_bytes_delta += size
        else:
            delta.updates_full += 1
            delta.updates_full_failed += 0 if ok else 1
            delta.update_bytes_full += size


def fold_batch(
    folded: Folded, batch: Mapping[str, Any], thresholds: Mapping[ThresholdKey, float]
) -> None:
    """Add one client's batch to `folded`."""
    environment = int(batch["env"])
    client = str(batch["client"])
    for (flag, segment, arm, rung, model, minute), group in _groups(batch["events"]).items():
        key: BucketKey = (environment, flag, segment, arm, rung, model, minute)
        delta = folded.buckets.get(key)
        if delta is None:
            delta = folded.buckets[key] = BucketDelta()
        delta.clients += 1
        delta.client_exposures += group.exposures
        if group.inference_ms:
            delta.inference_ms_n += len(group.inference_ms)
            delta.inference_ms_sum += sum(group.inference_ms)
            for ms in group.inference_ms:
                name = inference_bin(ms)
                delta.histogram[name] = delta.histogram.get(name, 0) + 1
            p95 = thresholds.get((environment, flag, segment))
            if p95 is not None:
                slow = sum(1 for ms in group.inference_ms if ms > p95)
                _observe(delta, "latency", slow / len(group.inference_ms))
        if group.millijoules:
            _observe(delta, "energy", sum(group.millijoules) / len(group.millijoules))
        if group.ratings:
            _observe(delta, "rating", sum(group.ratings) / len(group.ratings))
        if group.suggestions:
            _observe(delta, "acceptance", group.accepted / group.suggestions)
        if group.freshness_hours:
            hours = group.freshness_hours
            _observe(delta, "freshness", sum(hours) / len(hours))
        if group.updates:
            _count_updates(delta, group.updates)
        if group.failed:
            failure: FailureKey = (environment, flag, client, minute - minute % 3600)
            first = folded.failures.get(failure)
            if first is None or minute < first[-1]:
                folded.failures[failure] = key


def fold_batches(
    batches: Iterable[Mapping[str, Any]], thresholds: Mapping[ThresholdKey, float]
) -> Folded:
    """Deltas of many batches (each one client's report), in the order given."""
    folded = Folded()
    for batch in batches:
        fold_batch(folded, batch, thresholds)
    return folded
