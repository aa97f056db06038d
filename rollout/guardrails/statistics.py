"""The sequential tests of docs/guardrails.md, over aggregates (counts, sums, sums of squares).

- one-sided normal-mixture mSPRT for means (latency share, rating, energy), with its
  always-valid interval;
- the rate-ratio e-process for crashes and errors, robust to traffic swings because each
  event is scored against the treatment's share of exposure at its own time;
- a sequential Beta-binomial Bayes factor for sample-ratio mismatch.
Everything is computed in logs so that long streams neither overflow nor underflow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, log_ndtr

PSI_GRID = np.geomspace(1.05, 8.0, 48)  # rate ratios the crash e-process averages over


@dataclass(frozen=True)
class Arm:
    """Aggregates of one arm: clients, and the sum and sum of squares of their values."""

    n: int
    total: float
    total_squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Unbiased sample variance (0 with fewer than two clients)."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_squares - self.total**2 / self.n) / (self.n - 1))


@dataclass(frozen=True)
class MeanTest:
    """A mean metric's evidence: harm estimate d, its always-valid interval, the e-value."""

    estimate: float
    interval: tuple[float, float]
    log_e_value: float
    n_treatment: int
    n_control: int

    @property
    def e_value(self) -> float:
        return math.exp(min(self.log_e_value, 700.0))


def msprt_log_lambda(d: float, v: float, tau: float) -> float:
    """log Λ of the one-sided normal-mixture mSPRT (harm when d > 0)."""
    if v <= 0:
        return 0.0
    t2 = tau * tau
    return (
        math.log(2.0)
        + 0.5 * math.log(v / (v + t2))
        + t2 * d * d / (2.0 * v * (v + t2))
        + float(log_ndtr(tau * d / math.sqrt(v * (v + t2))))
    )


def always_valid_interval(d: float, v: float, tau: float, alpha: float) -> tuple[float, float]:
    """d ± the half-width of the always-valid (1 - alpha) interval (docs/guardrails.md)."""
    if v <= 0:
        return (d, d)
    t2 = tau * tau
    half = math.sqrt(v * (v + t2) / t2 * (2.0 * math.log(1.0 / alpha) + math.log((v + t2) / v)))
    return (d - half, d + half)


def mean_test(
    treatment: Arm,
    control: Arm,
    *,
    tau: float,
    alpha: float,
    margin: float = 0.0,
    harm_sign: int = 1,
) -> MeanTest:
    """Test harm = harm_sign·(mean_T − mean_C) − margin > 0 (harm_sign −1: lower is worse)."""
    d = harm_sign * (treatment.mean - control.mean) - margin
    v = (treatment.variance / treatment.n if treatment.n else 0.0) + (
        control.variance / control.n if control.n else 0.0
    )
    return MeanTest(
        estimate=d,
        interval=always_valid_interval(d, v, tau, alpha),
        log_e_value=msprt_log_lambda(d, v, tau),
        n_treatment=treatment.n,
        n_control=control.n,
    )


def rate_ratio_log_e_value(
    treatment_events: Sequence[int] | np.ndarray,
    control_events: Sequence[int] | np.ndarray,
    treatment_share: Sequence[float] | np.ndarray,
    psi_grid: np.ndarray = PSI_GRID,
) -> float:
    """log of the crash e-process: the mean over ψ of Π q(ψ)/q(1) (treatment events) and
    (1−q(ψ))/(1−q(1)) (control events), q(ψ) = ψπ/(ψπ+1−π), per time bucket's share π."""
    x = np.asarray(treatment_events, dtype=float)
    y = np.asarray(control_events, dtype=float)
    pi = np.clip(np.asarray(treatment_share, dtype=float), 1e-9, 1 - 1e-9)
    if x.size == 0:
        return 0.0
    psi = psi_grid[:, None]
    q = psi * pi / (psi * pi + 1.0 - pi)
    log_terms = x * np.log(q / pi) + y * np.log((1.0 - q) / (1.0 - pi))
    per_psi = log_terms.sum(axis=1)
    top = per_psi.max()
    return float(top + math.log(np.exp(per_psi - top).mean()))


def srm_log_bayes_factor(
    treatment: int, control: int, expected_share: float, concentration: float = 1.0
) -> float:
    """log BF of "the split is not the configured one" (Beta prior centred on the expected
    share) against "it is"; large values mean a sample-ratio mismatch."""
    n = treatment + control
    if n == 0 or not 0.0 < expected_share < 1.0:
        return 0.0
    a = expected_share * concentration
    b = (1.0 - expected_share) * concentration
    log_marginal_h1 = float(betaln(a + treatment, b + control) - betaln(a, b))
    log_likelihood_h0 = treatment * math.log(expected_share) + control * math.log(
        1.0 - expected_share
    )
    return log_marginal_h1 - log_likelihood_h0


def rollback_threshold(metrics_with_data: int, alpha: float = 0.05) -> float:
    """The e-value at which a segment is rolled back: m/α (Bonferroni over the metrics)."""
    return max(1, metrics_with_data) / alpha
