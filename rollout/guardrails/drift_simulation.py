"""Drift simulation: synthetic on-device telemetry, accelerated time, the real drift rule.

One run follows one model version in one segment for `horizon_hours`. Every controller
interval (`STEP_HOURS`, the drift task's hour) the segment's devices that report
(`devices_per_hour` of them an hour) send what the telemetry fold makes one client
observation of: the share of their suggestions they accepted (each device has its own
acceptance propensity, Beta-distributed around the population's rate), their mean rating
(some of them) and the mean freshness of their on-device data. The observations are summed
as the fold sums them (n, sum, sum of squares); the first `reference_hours` make the
reference, and after every interval `rollout.guardrails.drift.drift_verdict` — the function
the live drift controller calls — decides on the data since.

Scenarios:
- aa: nothing changes (every trigger is a false one);
- decay10: from `onset_hours`, acceptance falls by 10 % relative;
- stale: freshness grows steadily and crosses the flag's limit at `onset_hours`.
Hours to trigger are counted from the onset (the crossing, for stale; for aa, from when
watching begins). In stale runs the freshness drift test usually files first, before the
crossing; the run then goes on until the limit's own rule fires, and reports that too.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from rollout.guardrails.drift import (
    STALE,
    STALE_TREND_INTERVALS,
    DriftPolicy,
    drift_verdict,
    stale_rule,
)
from rollout.guardrails.simulation import clopper_pearson
from rollout.guardrails.statistics import Arm

SCENARIOS = ("aa", "decay10", "stale")
STEP_HOURS = 1.0  # the drift task's interval (hourly: drift is slow, and an hour of data is steady)
FRESHNESS_LIMIT_HOURS = 48.0  # the simulated flag's limit (stale)


@dataclass(frozen=True, slots=True)
class Fleet:
    """The segment's devices as the reference window sees them."""

    acceptance: float = 0.30  # mean share of suggestions accepted
    acceptance_concentration: float = 20.0  # Beta(a, b) with a + b = this, across devices
    suggestions_per_report: float = 4.0  # Poisson mean (at least one) per report
    rating_share: float = 0.3  # reports that carry a rating
    rating_latent: float = 4.1
    freshness_hours: float = 6.0  # mean age of on-device data
    freshness_cv: float = 0.5


@dataclass(frozen=True, slots=True)
class Run:
    triggered: bool
    metric: str
    hours: float | None  # from the onset (negative: before it); None when not triggered
    # stale: hours from the crossing to the freshness limit's own rule (the first trigger is
    # often the freshness drift test, before the crossing)
    stale_hours: float | None = None


def _sums(values: np.ndarray) -> tuple[int, float, float]:
    return int(values.size), float(values.sum()), float(np.square(values).sum())


class _Totals:
    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}

    def add(self, metric: str, values: np.ndarray) -> None:
        n, total, squares = _sums(values)
        entry = self.sums.setdefault(metric, [0, 0.0, 0.0])
        entry[0] += n
        entry[1] += total
        entry[2] += squares

    def arms(self) -> dict[str, Arm]:
        return {m: Arm(int(v[0]), v[1], v[2]) for m, v in self.sums.items()}


def simulate_run(
    scenario: str,
    *,
    seed: int,
    devices_per_hour: float = 1000.0,
    policy: DriftPolicy | None = None,
    fleet: Fleet | None = None,
    onset_hours: float = 36.0,
    horizon_hours: float = 168.0,
) -> Run:
    """One seeded run: when (if ever) the drift rule files a retraining request."""
    rng = np.random.default_rng(seed)
    fleet = fleet or Fleet()
    policy = policy or DriftPolicy(
        freshness_limit_hours=FRESHNESS_LIMIT_HOURS if scenario == "stale" else None
    )
    reference, current = _Totals(), _Totals()
    first: Run | None = None
    recent: deque[Arm] = deque(maxlen=STALE_TREND_INTERVALS)  # freshness of the last intervals
    if scenario == "aa":
        onset_hours = policy.reference_hours  # hours counted from when watching begins
    steps = round(horizon_hours / STEP_HOURS)
    per_step = devices_per_hour * STEP_HOURS
    a = fleet.acceptance * fleet.acceptance_concentration
    b = (1 - fleet.acceptance) * fleet.acceptance_concentration
    # Stale: freshness climbs linearly from the fleet's mean to the limit at the onset.
    climb = (FRESHNESS_LIMIT_HOURS - fleet.freshness_hours) / onset_hours
    for step in range(1, steps + 1):
        hour = step * STEP_HOURS
        n = int(rng.poisson(per_step))
        if n == 0:
            continue
        propensity = rng.beta(a, b, size=n)
        if scenario == "decay10" and hour > onset_hours:
            propensity = propensity * 0.9
        shown = 1 + rng.poisson(fleet.suggestions_per_report - 1, size=n)
        acceptance = rng.binomial(shown, propensity) / shown
        rated = rng.random(n) < fleet.rating_share
        ratings = np.clip(np.rint(fleet.rating_latent + rng.normal(0, 1, rated.sum())), 1, 5)
        mean_freshness = fleet.freshness_hours
        if scenario == "stale":
            mean_freshness += climb * hour
        shape = 1 / fleet.freshness_cv**2
        freshness = rng.gamma(shape, mean_freshness / shape, size=n)
        in_reference = hour <= policy.reference_hours
        window = reference if in_reference else current
        window.add("acceptance", acceptance)
        window.add("rating", ratings)
        window.add("freshness", freshness)
        recent.append(Arm(*_sums(freshness)))
        if in_reference:
            continue
        if first is not None:  # stale, after a drift trigger: only the limit is watched now
            limit = policy.freshness_limit_hours
            if limit is not None and stale_rule(limit, tuple(recent)):
                return Run(True, first.metric, first.hours, hour - onset_hours)
            continue
        verdict = drift_verdict(
            policy, reference.arms(), current.arms(), recent_freshness=tuple(recent)
        )
        if verdict.fired:
            run = Run(True, verdict.metric, hour - onset_hours)
            if scenario != "stale" or verdict.metric == STALE:
                return Run(
                    run.triggered, run.metric, run.hours, run.hours if scenario == "stale" else None
                )
            first = run
    return first or Run(False, "", None)


def simulate(
    scenario: str,
    *,
    runs: int,
    seed: int,
    devices_per_hour: float = 1000.0,
    policy: DriftPolicy | None = None,
) -> dict[str, Any]:
    """Many seeded runs of a scenario, summarised as `simulate_model_health --json` prints."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario: must be one of {', '.join(SCENARIOS)}")
    seeds = np.random.SeedSequence(seed).spawn(runs)
    results = [
        simulate_run(
            scenario,
            seed=int(s.generate_state(1)[0]),
            devices_per_hour=devices_per_hour,
            policy=policy,
        )
        for s in seeds
    ]
    triggered = [r for r in results if r.triggered]
    hours = [r.hours for r in triggered if r.hours is not None]
    stale = [r.stale_hours for r in results if r.stale_hours is not None]
    return {
        "scenario": scenario,
        "runs": runs,
        "seed": seed,
        "devices_per_hour": devices_per_hour,
        "trigger_rate": len(triggered) / runs if runs else 0.0,
        "trigger_rate_ci": [round(v, 4) for v in clopper_pearson(len(triggered), runs)],
        "median_hours_to_trigger": round(float(np.median(hours)), 3) if hours else None,
        "max_hours_to_trigger": round(float(np.max(hours)), 3) if hours else None,
        "step_hours": round(STEP_HOURS, 6),
        **(
            {
                "median_hours_to_stale_rule": round(float(np.median(stale)), 3) if stale else None,
                "max_hours_to_stale_rule": round(float(np.max(stale)), 3) if stale else None,
                "min_hours_to_stale_rule": round(float(np.min(stale)), 3) if stale else None,
                # never later than one interval after the crossing (the target) …
                "stale_rule_within_one_interval": round(
                    sum(1 for h in stale if h <= STEP_HOURS) / len(stale), 4
                )
                if stale
                else None,
                # … and how often the projection filed more than one interval early
                "stale_rule_early": round(sum(1 for h in stale if h < -STEP_HOURS) / len(stale), 4)
                if stale
                else None,
            }
            if scenario == "stale"
            else {}
        ),
        "fired_by": {
            metric: sum(1 for r in triggered if r.metric == metric)
            for metric in sorted({r.metric for r in triggered})
        },
    }
