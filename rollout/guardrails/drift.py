"""Drift of an on-device model: has its quality decayed against its own reference window?

Per (environment, flag, segment, model version) the drift controller (rollout/drift.py)
freezes a reference window, the first REFERENCE_HOURS of the version's data in the segment,
and from then on tests the data since the reference closed against it, for each metric:

- acceptance: the per-client share of suggestions accepted (lower is worse);
- rating: the per-client mean feedback rating (lower is worse);
- freshness: the per-client mean hours since the on-device data was refreshed (higher is
  worse).

Each test is the guardrails' one-sided normal-mixture mSPRT with its always-valid interval
(rollout/guardrails/statistics.py), the reference in the control arm's place: the evidence can
be looked at after every fold without inflating false triggers. A metric fires when its
e-value reaches m/α (Bonferroni over the metrics) and its always-valid interval excludes no
decay, after at least `min_clients` in the current window. The current window restarts every
`epoch_hours` so that a decay late in a version's life is not diluted by months of good data;
epoch k spends α·6/(π²k²) of the budget, so the epochs together spend at most α.

Staleness is a limit, not a test: a flag may set a freshness limit, and the rule files a
request at once when the segment's mean freshness is beyond it, either in the latest controller
interval or where the trend of the last STALE_TREND_INTERVALS intervals (a least-squares line
through their means, each weighted by its clients) puts it by the next check. The projection
is what makes "caught within one interval of crossing" hold: an hourly check that only looks
back misses a crossing whenever the last hour's sample mean happens to fall just short of it.

Pure: the Django side hands in sums (n, sum, sum of squares per metric) and gets a verdict;
the simulation (rollout/guardrails/drift_simulation.py) calls the very same function.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollout.guardrails.statistics import Arm, mean_test

DRIFT_METRICS = ("acceptance", "rating", "freshness")
# +1: a higher value is worse; -1: a lower one is.
HARM_SIGN = {"acceptance": -1, "rating": -1, "freshness": 1}
# The mixture's scale, relative to the reference mean: the size of decay the test is tuned to.
RELATIVE_TAU = {"acceptance": 0.05, "rating": 0.03, "freshness": 0.25}
STALE = "stale"
STALE_TREND_INTERVALS = 6  # controller intervals the stale rule's trend is fitted over


@dataclass(frozen=True, slots=True)
class DriftPolicy:
    """How a version's drift is watched (settings with defaults; docs/edge-models.md)."""

    reference_hours: float = 24.0
    min_clients: int = 200  # client observations in the reference and in the current window
    alpha: float = 0.01  # false-trigger budget of one (segment, version) watch, all epochs
    epoch_hours: float = 7 * 24.0
    freshness_limit_hours: float | None = None

    def alpha_of_epoch(self, epoch: int) -> float:
        """Epoch k's share of α: α·6/(π²k²), which sums to α over every epoch."""
        return self.alpha * 6.0 / (math.pi**2 * max(1, epoch) ** 2)


@dataclass(frozen=True, slots=True)
class DriftEvidence:
    metric: str
    reference_mean: float
    current_mean: float
    decay: float  # how much worse, in the metric's units (positive: worse)
    interval: tuple[float, float]  # always-valid interval of the decay
    log_e_value: float
    n_reference: int
    n_current: int

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "reference": _finite(self.reference_mean),
            "current": _finite(self.current_mean),
            "decay": _finite(self.decay),
            "relativeDecay": _finite(self.decay / abs(self.reference_mean))
            if self.reference_mean
            else None,
            "interval": [_finite(self.interval[0]), _finite(self.interval[1])],
            "eValue": _finite(math.exp(min(self.log_e_value, 700.0))),
            "n": {"reference": self.n_reference, "current": self.n_current},
        }


@dataclass(frozen=True, slots=True)
class DriftVerdict:
    fired: bool
    metric: str  # the metric that fired ("stale" for the freshness limit), "" when none
    reason: str
    threshold: float
    evidence: tuple[DriftEvidence, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def evidence_json(self) -> dict[str, Any]:
        return {
            "fired": self.fired,
            "metric": self.metric or None,
            "threshold": self.threshold,
            "metrics": [e.as_json() for e in self.evidence],
            **self.details,
        }


def _finite(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def freshness_next_check(recent: Sequence[Arm]) -> float | None:
    """Mean freshness projected to the next check from the recent intervals (oldest first).

    A least-squares line through the intervals' means at x = 0, 1, …, each weighted by its
    clients, evaluated one interval past the latest. None without data; with one interval of
    data, or a flat or falling trend, the latest mean itself (the rule never projects
    freshness to improve: a check that waits for data to refresh would miss a crossing).
    """
    points = [(x, arm.mean, arm.n) for x, arm in enumerate(recent) if arm.n]
    if not points:
        return None
    latest = points[-1][1]
    weight = sum(n for _, _, n in points)
    x_mean = sum(x * n for x, _, n in points) / weight
    y_mean = sum(y * n for _, y, n in points) / weight
    sxx = sum(n * (x - x_mean) ** 2 for x, _, n in points)
    if sxx == 0.0:
        return latest
    slope = sum(n * (x - x_mean) * (y - y_mean) for x, y, n in points) / sxx
    projected = y_mean + slope * (len(recent) - x_mean)
    return max(latest, projected)


def stale_rule(
    limit: float, recent: Sequence[Arm], details: dict[str, Any] | None = None
) -> str | None:
    """The freshness limit's rule: the reason when it fires, else None (`details` gets the
    latest and projected means)."""
    details = {} if details is None else details
    latest = next((arm for arm in reversed(recent) if arm.n), None)
    projected = freshness_next_check(recent)
    if latest is None or projected is None:
        return None
    details["latestFreshnessHours"] = _finite(latest.mean)
    details["projectedFreshnessHours"] = _finite(projected)
    if latest.mean > limit:
        return (
            f"freshness: on-device data {latest.mean:.1f} h old on average, "
            f"beyond the flag's limit of {limit:g} h ({latest.n} clients)"
        )
    if projected > limit:
        return (
            f"freshness: on-device data {latest.mean:.1f} h old on average and rising, "
            f"{projected:.1f} h by the next check, beyond the flag's limit of {limit:g} h "
            f"({sum(arm.n for arm in recent)} clients over {len(recent)} intervals)"
        )
    return None


def drift_evidence(metric: str, reference: Arm, current: Arm, alpha: float) -> DriftEvidence:
    """One metric's decay against its reference: estimate, always-valid interval, e-value."""
    tau = RELATIVE_TAU[metric] * abs(reference.mean) or RELATIVE_TAU[metric]
    test = mean_test(current, reference, tau=tau, alpha=alpha, harm_sign=HARM_SIGN[metric])
    return DriftEvidence(
        metric,
        reference.mean,
        current.mean,
        test.estimate,
        test.interval,
        test.log_e_value,
        reference.n,
        current.n,
    )


def drift_verdict(
    policy: DriftPolicy,
    reference: Mapping[str, Arm],
    current: Mapping[str, Arm],
    *,
    epoch: int = 1,
    recent_freshness: Sequence[Arm] = (),
) -> DriftVerdict:
    """The drift rule at one instant: stale first, then the sequential tests.

    `recent_freshness`: the freshness sums of the last controller intervals, oldest first
    (for the stale rule; at most STALE_TREND_INTERVALS are used).
    """
    alpha = policy.alpha_of_epoch(epoch)
    threshold = len(DRIFT_METRICS) / alpha
    details: dict[str, Any] = {"epoch": epoch, "alpha": alpha}
    limit = policy.freshness_limit_hours
    if limit is not None:
        reason = stale_rule(limit, recent_freshness[-STALE_TREND_INTERVALS:], details)
        if reason:
            return DriftVerdict(True, STALE, reason, threshold, details=details)
    evidence = []
    for metric in DRIFT_METRICS:
        ref, now = reference.get(metric), current.get(metric)
        if ref is None or now is None or min(ref.n, now.n) < policy.min_clients:
            continue
        evidence.append(drift_evidence(metric, ref, now, alpha / len(DRIFT_METRICS)))
    fired = [e for e in evidence if e.log_e_value >= math.log(threshold) and e.interval[0] > 0.0]
    if not fired:
        return DriftVerdict(False, "", "no sustained decay", threshold, tuple(evidence), details)
    worst = max(fired, key=lambda e: e.log_e_value)
    return DriftVerdict(
        True,
        worst.metric,
        f"{worst.metric}: {worst.current_mean:.4g} against a reference of "
        f"{worst.reference_mean:.4g} (decay {worst.decay:.3g}, always-valid interval "
        f"[{worst.interval[0]:.3g}, {worst.interval[1]:.3g}]), e-value "
        f"{math.exp(min(worst.log_e_value, 700.0)):.3g} ≥ {threshold:.3g}",
        threshold,
        tuple(evidence),
        details,
    )
