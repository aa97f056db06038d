"""The guardrail statistics against values computed by hand, and their error rates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rollout.guardrails.statistics import (
    PSI_GRID,
    Arm,
    always_valid_interval,
    mean_test,
    msprt_log_lambda,
    rate_ratio_log_e_value,
    rollback_threshold,
    srm_log_bayes_factor,
)


def test_msprt__hand_computed_points() -> None:
    # V = 1, τ = 1: Λ(0) = 2·√½·Φ(0) = 0.70711; Λ(2) = 2·√½·e¹·Φ(√2) = 1.41421·2.71828·0.92135
    assert math.exp(msprt_log_lambda(0.0, 1.0, 1.0)) == pytest.approx(0.707107, rel=1e-5)
    assert math.exp(msprt_log_lambda(2.0, 1.0, 1.0)) == pytest.approx(3.541884, rel=1e-5)
    # harm in the other direction gives no evidence of harm
    assert math.exp(msprt_log_lambda(-2.0, 1.0, 1.0)) < 0.5


def test_always_valid_interval__hand_computed() -> None:
    # V = 1, τ = 1, α = 0.05: half-width √(2·(2 ln 20 + ln 2)) = 3.6695
    low, high = always_valid_interval(0.5, 1.0, 1.0, 0.05)

    assert high - 0.5 == pytest.approx(math.sqrt(2 * (2 * math.log(20) + math.log(2))), rel=1e-9)
    assert 0.5 - low == pytest.approx(high - 0.5)


def test_arm__aggregates__mean_and_unbiased_variance() -> None:
    values = np.array([1.0, 2.0, 4.0, 7.0])
    arm = Arm(n=4, total=float(values.sum()), total_squares=float((values**2).sum()))

    assert arm.mean == pytest.approx(3.5)
    assert arm.variance == pytest.approx(values.var(ddof=1))


def test_mean_test__rating_drop__harm_positive_when_treatment_lower() -> None:
    control = Arm(n=400, total=400 * 4.2, total_squares=400 * (4.2**2 + 0.8**2))
    treatment = Arm(n=400, total=400 * 3.6, total_squares=400 * (3.6**2 + 0.8**2))

    result = mean_test(treatment, control, tau=0.1, alpha=0.05, harm_sign=-1)

    assert result.estimate == pytest.approx(0.6)
    assert result.e_value > rollback_threshold(4)
    assert result.interval[0] > 0


def test_rate_ratio__hand_computed_single_event() -> None:
    # one treatment crash at π = ½: e = mean over ψ of 2ψ/(ψ+1)
    expected = float(np.mean(2 * PSI_GRID / (PSI_GRID + 1)))

    assert math.exp(rate_ratio_log_e_value([1], [0], [0.5])) == pytest.approx(expected, rel=1e-9)


def test_rate_ratio__aa_streams__rarely_reach_the_threshold() -> None:
    rng = np.random.default_rng(1)
    fired = 0
    runs = 300
    for _ in range(runs):
        share = rng.uniform(0.05, 0.5, 200)  # exposure share varies by hour
        crashes = rng.poisson(2.0, 200)
        treatment = rng.binomial(crashes, share)
        log_e = np.array(
            [
                rate_ratio_log_e_value(treatment[:t], (crashes - treatment)[:t], share[:t])
                for t in range(10, 201, 10)
            ]
        )
        fired += bool((log_e >= math.log(rollback_threshold(1))).any())

    assert fired / runs <= 0.05  # anytime-valid: checked 20 times, still under α


def test_rate_ratio__doubled_crash_rate__fires() -> None:
    rng = np.random.default_rng(2)
    share = np.full(300, 0.25)
    treatment = rng.poisson(2.0 * 0.25 * 4, 300)  # twice the control's per-exposure rate
    control = rng.poisson(1.0 * 0.75 * 4, 300)

    assert rate_ratio_log_e_value(treatment, control, share) > math.log(rollback_threshold(4))


def test_srm__matching_split_quiet_mismatch_loud() -> None:
    assert srm_log_bayes_factor(2500, 7500, 0.25) < 0
    assert srm_log_bayes_factor(3000, 7000, 0.25) > math.log(1000)
