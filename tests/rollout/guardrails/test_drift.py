"""The drift rule against hand-computed values, its stale rule, its epochs' α, and an A/A
stream through the simulation (false triggers within the budget)."""

from __future__ import annotations

import math

import pytest
from scipy.special import log_ndtr

from rollout.guardrails.drift import (
    DriftPolicy,
    drift_evidence,
    drift_verdict,
    freshness_next_check,
)
from rollout.guardrails.drift_simulation import simulate
from rollout.guardrails.statistics import Arm


def _arm(n: int, mean: float, sd: float) -> Arm:
    """An arm with exactly this mean and (unbiased) standard deviation."""
    total = n * mean
    squares = sd * sd * (n - 1) + total * total / n
    return Arm(n, total, squares)


def test_evidence__acceptance_decay__the_msprt_by_hand() -> None:
    reference, current = _arm(5000, 0.30, 0.25), _arm(2000, 0.27, 0.25)

    evidence = drift_evidence("acceptance", reference, current, alpha=0.01 / 3)

    d = 0.30 - 0.27  # lower acceptance is worse: the decay is reference − current
    v = 0.25**2 / 2000 + 0.25**2 / 5000
    tau = 0.05 * 0.30
    t2 = tau * tau
    log_lambda = (
        math.log(2)
        + 0.5 * math.log(v / (v + t2))
        + t2 * d * d / (2 * v * (v + t2))
        + float(log_ndtr(tau * d / math.sqrt(v * (v + t2))))
    )
    half = math.sqrt(v * (v + t2) / t2 * (2 * math.log(3 / 0.01) + math.log((v + t2) / v)))
    assert math.isclose(evidence.decay, d, rel_tol=1e-9)
    assert math.isclose(evidence.log_e_value, log_lambda, rel_tol=1e-9)
    assert math.isclose(evidence.interval[0], d - half, rel_tol=1e-9)
    assert math.isclose(evidence.interval[1], d + half, rel_tol=1e-9)


def test_verdict__clear_decay__fires_on_acceptance_with_the_evidence() -> None:
    policy = DriftPolicy(min_clients=100)
    reference = {"acceptance": _arm(5000, 0.30, 0.25), "rating": _arm(1500, 4.1, 0.9)}
    current = {"acceptance": _arm(2000, 0.27, 0.25), "rating": _arm(600, 4.1, 0.9)}

    verdict = drift_verdict(policy, reference, current)

    assert verdict.fired
    assert verdict.metric == "acceptance"
    assert math.isclose(verdict.threshold, 3 / policy.alpha_of_epoch(1))
    shown = verdict.evidence_json()["metrics"][0]
    assert shown["metric"] == "acceptance"
    assert shown["n"] == {"reference": 5000, "current": 2000}
    assert shown["interval"][0] > 0  # the always-valid interval excludes no decay


def test_verdict__same_means__no_trigger_and_too_few_clients__no_test() -> None:
    reference = {"acceptance": _arm(5000, 0.30, 0.25)}

    same = drift_verdict(DriftPolicy(), reference, {"acceptance": _arm(3000, 0.30, 0.25)})
    few = drift_verdict(DriftPolicy(), reference, {"acceptance": _arm(50, 0.10, 0.25)})

    assert not same.fired
    assert len(same.evidence) == 1
    assert not few.fired
    assert few.evidence == ()


def test_verdict__improvement__never_fires() -> None:
    reference = {"acceptance": _arm(5000, 0.30, 0.25)}

    verdict = drift_verdict(DriftPolicy(), reference, {"acceptance": _arm(5000, 0.40, 0.25)})

    assert not verdict.fired


def test_verdict__freshness_beyond_the_limit__stale_at_once() -> None:
    policy = DriftPolicy(freshness_limit_hours=48)

    stale = drift_verdict(policy, {}, {}, recent_freshness=[_arm(900, 49.0, 10.0)])
    fresh = drift_verdict(policy, {}, {}, recent_freshness=[_arm(900, 47.0, 10.0)])

    assert (stale.fired, stale.metric) == (True, "stale")
    assert "beyond the flag's limit of 48 h" in stale.reason
    assert not fresh.fired


def test_freshness_next_check__weighted_line_one_interval_ahead() -> None:
    # Means 40, 42, 44 with 100 clients each: slope 2 h per interval, next check at 46.
    rising = [_arm(100, 40.0, 5.0), _arm(100, 42.0, 5.0), _arm(100, 44.0, 5.0)]
    # Weighted: x̄ = (0·100 + 1·300)/400 = 0.75, ȳ = (40·100 + 44·300)/400 = 43,
    # slope = (100·(−0.75)·(−3) + 300·0.25·1)/(100·0.5625 + 300·0.0625) = 300/75 = 4,
    # at x = 2: 43 + 4·1.25 = 48.
    weighted = [_arm(100, 40.0, 5.0), _arm(300, 44.0, 5.0)]
    falling = [_arm(100, 44.0, 5.0), _arm(100, 40.0, 5.0)]
    gap = [Arm(0, 0.0, 0.0), _arm(100, 30.0, 5.0)]

    assert freshness_next_check(rising) == pytest.approx(46.0)
    assert freshness_next_check(weighted) == pytest.approx(48.0)
    assert freshness_next_check(falling) == pytest.approx(40.0)  # never projected to improve
    assert freshness_next_check(gap) == pytest.approx(30.0)
    assert freshness_next_check([]) is None


def test_verdict__freshness_rising_to_the_limit_by_the_next_check__stale_now() -> None:
    policy = DriftPolicy(freshness_limit_hours=48)
    rising = [_arm(900, 43.0 + 1.5 * k, 10.0) for k in range(4)]  # 43 … 47.5, 49 next

    verdict = drift_verdict(policy, {}, {}, recent_freshness=rising)
    steady = drift_verdict(policy, {}, {}, recent_freshness=[_arm(900, 47.5, 10.0)] * 4)

    assert (verdict.fired, verdict.metric) == (True, "stale")
    assert "49.0 h by the next check" in verdict.reason
    assert verdict.details["projectedFreshnessHours"] == pytest.approx(49.0)
    assert not steady.fired


def test_epochs__alpha_shares_sum_to_at_most_alpha() -> None:
    policy = DriftPolicy(alpha=0.01)

    spent = sum(policy.alpha_of_epoch(k) for k in range(1, 100_000))

    assert spent <= 0.01
    assert policy.alpha_of_epoch(2) < policy.alpha_of_epoch(1)


def test_aa_stream__false_triggers_within_the_budget() -> None:
    result = simulate("aa", runs=150, seed=11, devices_per_hour=1000)

    # α = 1 % per watch; 2 % is the target: its 95 % interval's lower end must be under it.
    assert result["trigger_rate"] <= 0.02
    assert result["trigger_rate_ci"][0] <= 0.02


def test_decay10__caught_in_95_percent_within_a_day() -> None:
    result = simulate("decay10", runs=60, seed=12, devices_per_hour=1000)

    assert result["trigger_rate"] >= 0.95
    assert result["median_hours_to_trigger"] <= 24
    assert result["fired_by"] == {"acceptance": 60}


def test_stale__limit_rule_within_one_interval_of_the_crossing() -> None:
    result = simulate("stale", runs=60, seed=13, devices_per_hour=1000)

    assert result["trigger_rate"] == 1.0
    assert result["median_hours_to_trigger"] <= result["step_hours"]
    assert result["median_hours_to_stale_rule"] <= result["step_hours"]
    assert result["stale_rule_within_one_interval"] == 1.0
    assert result["max_hours_to_stale_rule"] <= result["step_hours"]
