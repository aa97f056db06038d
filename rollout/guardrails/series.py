"""A stage's aggregates as windows and evidence: the one computation behind both the
controller's decision and the flag page's charts.

Pure: the Django side hands in bucket sums (per arm, over any period: a minute, an hour,
the whole stage) and the minutes in which a failure happened. `stage_window` adds up what
lies before an instant; `stage_series` does so at several instants and gathers the evidence
at each with `decision.gather_evidence`, the function `decision.decide` decides on.
So the last point the flag page draws is, number for number, what the controller saw at
the same instant (same plan parsing, margins, relative scales, default τ, burn-in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from rollout.engine.ladder import CONTROL, TREATMENT
from rollout.guardrails.decision import (
    FailureSeries,
    MetricEvidence,
    StageWindow,
    gather_evidence,
)
from rollout.guardrails.plan import MEAN_METRICS, PlanSpec
from rollout.guardrails.statistics import Arm

# The sums a bucket carries (MetricBucket's additive columns).
SUMMED = (
    "exposures",
    "client_exposures",
    "clients",
    "failures",
    *(f"{m}_{part}" for m in MEAN_METRICS for part in ("n", "sum", "sumsq")),
)


def exposures_of(sums: Mapping[str, Any]) -> float:
    """The server's own exposure count; the clients' reports where the server counted none
    (a server SDK evaluating locally from the snapshot download, for instance)."""
    return float(sums.get("exposures") or sums.get("client_exposures") or 0)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One arm's sums over a period of the stage (a minute, an hour, the whole stage); it
    counts at every instant from its last minute with data on."""

    arm: str
    latest: datetime  # the start of the last minute with data in the period
    sums: Mapping[str, Any]  # summed column -> value (None: no rows)


@dataclass(frozen=True, slots=True)
class FailureMinute:
    """One arm's exposures and failures in a minute in which some arm failed."""

    arm: str
    minute: datetime
    exposures: float
    failures: float


@dataclass(frozen=True, slots=True)
class StagePoint:
    """The stage as it stood at `at`: its window and the evidence gathered from it."""

    at: datetime
    window: StageWindow
    evidence: tuple[MetricEvidence, ...]
    failures: tuple[float, float] = field(default=(0.0, 0.0))  # treatment, control

    def failure_rates(self) -> tuple[float, float]:
        """Failures per exposure, treatment and control."""
        return (
            self.failures[0] / max(1.0, self.window.exposures_treatment),
            self.failures[1] / max(1.0, self.window.exposures_control),
        )


def _arm(sums: Mapping[str, float], metric: str) -> Arm:
    return Arm(
        int(sums.get(f"{metric}_n") or 0),
        float(sums.get(f"{metric}_sum") or 0.0),
        float(sums.get(f"{metric}_sumsq") or 0.0),
    )


def _failure_series(minutes: Iterable[FailureMinute]) -> FailureSeries:
    ordered = sorted({m.minute for m in minutes})
    if not ordered:
        return FailureSeries.empty()
    index = {minute: i for i, minute in enumerate(ordered)}
    series = np.zeros((4, len(ordered)))
    for m in minutes:
        offset = 0 if m.arm == TREATMENT else 1
        series[offset, index[m.minute]] += m.exposures
        series[2 + offset, index[m.minute]] += m.failures
    return FailureSeries(series[0], series[1], series[2], series[3])


def _in_order(buckets: Iterable[Bucket]) -> list[Bucket]:
    """The arms' buckets by their last minute (stable): the order both the single window
    and the series add them in, so that their sums agree to the last bit."""
    return sorted((b for b in buckets if b.arm in (TREATMENT, CONTROL)), key=lambda b: b.latest)


def _add(totals: dict[str, dict[str, float]], bucket: Bucket) -> None:
    side = totals[bucket.arm]
    for name in SUMMED:
        side[name] = side.get(name, 0.0) + float(bucket.sums.get(name) or 0)


def _window(
    totals: dict[str, dict[str, float]],
    latest: datetime | None,
    minutes: Sequence[FailureMinute],
    at: datetime,
) -> tuple[StageWindow, tuple[float, float]]:
    treatment, control = totals[TREATMENT], totals[CONTROL]
    window = StageWindow(
        treatment_clients=int(treatment.get("clients", 0)),
        control_clients=int(control.get("clients", 0)),
        exposures_treatment=int(exposures_of(treatment)),
        exposures_control=int(exposures_of(control)),
        means={m: (_arm(treatment, m), _arm(control, m)) for m in MEAN_METRICS},
        failures=_failure_series(minutes),
        hours_since_data=None
        if latest is None
        else max(0.0, (at - latest - timedelta(minutes=1)).total_seconds() / 3600.0),
    )
    return window, (treatment.get("failures", 0.0), control.get("failures", 0.0))


def stage_window(
    buckets: Iterable[Bucket], failure_minutes: Iterable[FailureMinute], at: datetime
) -> tuple[StageWindow, tuple[float, float]]:
    """The window of the buckets and failure minutes that had begun by `at`, and the
    failures of each arm."""
    totals: dict[str, dict[str, float]] = {TREATMENT: {}, CONTROL: {}}
    latest: datetime | None = None
    for bucket in _in_order(buckets):
        if bucket.latest > at:
            break
        _add(totals, bucket)
        latest = bucket.latest
    return _window(totals, latest, [m for m in failure_minutes if m.minute <= at], at)


def stage_series(
    plan: PlanSpec,
    percentage: int,
    carried: Mapping[str, float],
    buckets: Sequence[Bucket],
    failure_minutes: Sequence[FailureMinute],
    instants: Iterable[datetime],
) -> list[StagePoint]:
    """The stage at each instant (cumulative from its start), with its evidence: each
    point is `stage_window` at its instant, computed in one pass over the buckets."""
    ordered = _in_order(buckets)
    minutes = sorted(failure_minutes, key=lambda m: m.minute)
    totals: dict[str, dict[str, float]] = {TREATMENT: {}, CONTROL: {}}
    latest: datetime | None = None
    added = seen = 0
    points = []
    for at in sorted(set(instants)):
        while added < len(ordered) and ordered[added].latest <= at:
            _add(totals, ordered[added])
            latest = ordered[added].latest
            added += 1
        while seen < len(minutes) and minutes[seen].minute <= at:
            seen += 1
        window, failures = _window(totals, latest, minutes[:seen], at)
        evidence = gather_evidence(plan, percentage, window, dict(carried))
        points.append(StagePoint(at, window, evidence, failures))
    return points
