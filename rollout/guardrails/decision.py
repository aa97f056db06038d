"""The guardrail decision for one ramping segment: roll back, hold, advance or keep going.

Pure: it reads the stage's aggregates (a StageWindow, which rollout.guardrails.series
assembles) and returns a Verdict with the evidence behind it. The Django side
(rollout.controller) loads aggregates, applies the verdict through the state machine and
audits it; the simulation (rollout.guardrails.simulation) and the flag page's charts
(through rollout.guardrails.series) call the very same functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rollout.guardrails.plan import SRM_BAYES_FACTOR, Guardrail, PlanSpec
from rollout.guardrails.states import (
    ADVANCE,
    HOLD,
    HOLD_NO_DATA,
    HOLD_SRM,
    HOLD_TIMEOUT,
    ROLLBACK,
)
from rollout.guardrails.statistics import (
    Arm,
    mean_test,
    rate_ratio_log_e_value,
    rollback_threshold,
    srm_log_bayes_factor,
)

# A verdict is a state-machine action (advance, hold, rollback), or nothing to do yet.
CONTINUE = "continue"

# Harm direction per mean metric: +1 higher is worse, -1 lower is worse.
HARM_SIGN = {"latency": 1, "energy": 1, "rating": -1}


@dataclass(frozen=True, slots=True)
class FailureSeries:
    """Per time bucket (e.g. minute): exposures and capped failures of each arm."""

    exposures_treatment: np.ndarray
    exposures_control: np.ndarray
    failures_treatment: np.ndarray
    failures_control: np.ndarray

    @classmethod
    def empty(cls) -> FailureSeries:
        zero = np.zeros(0)
        return cls(zero, zero, zero, zero)


@dataclass(frozen=True, slots=True)
class StageWindow:
    """What the aggregates say about one segment's current stage."""

    treatment_clients: int  # clients of the treatment arm that reported in the stage
    control_clients: int
    exposures_treatment: int
    exposures_control: int
    means: dict[str, tuple[Arm, Arm]]  # metric -> (treatment, control)
    failures: FailureSeries
    hours_since_data: float | None  # None: no data in the stage at all


@dataclass(frozen=True, slots=True)
class MetricEvidence:
    metric: str
    estimate: float  # harm estimate (failures: treatment/control rate ratio)
    interval: tuple[float, float] | None  # always-valid (1 - alpha/m) interval
    n_treatment: int
    n_control: int
    log_e_stage: float
    log_e_total: float  # with the evidence carried from earlier stages

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "estimate": _finite(self.estimate),
            "interval": None
            if self.interval is None
            else [_finite(self.interval[0]), _finite(self.interval[1])],
            "nTreatment": self.n_treatment,
            "nControl": self.n_control,
            "eValue": _finite(math.exp(min(self.log_e_total, 700.0))),
            "logEValue": _finite(self.log_e_total),
            "logEValueStage": _finite(self.log_e_stage),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    action: str  # continue, advance, hold, rollback
    reason: str  # words for the audit log
    hold_reason: str = ""
    metric: str = ""  # the metric that fired (rollback)
    threshold: float = 0.0  # m / alpha
    evidence: tuple[MetricEvidence, ...] = ()
    srm_log_bayes_factor: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def evidence_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "metric": self.metric or None,
            "threshold": self.threshold,
            "metrics": [e.as_json() for e in self.evidence],
            "srmBayesFactor": _finite(math.exp(min(self.srm_log_bayes_factor, 700.0))),
            **self.details,
        }

    def stage_log_e(self) -> dict[str, float]:
        """Each metric's evidence from this stage, to carry into the next."""
        return {e.metric: e.log_e_stage for e in self.evidence}


def _finite(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def _failure_evidence(window: StageWindow, percentage: int, carried: float) -> MetricEvidence:
    series = window.failures
    exposures = series.exposures_treatment + series.exposures_control
    configured = percentage / 100.0
    # A bucket's treatment share of exposure; the configured split where nothing was exposed.
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(exposures > 0, series.exposures_treatment / exposures, configured)
    log_e = rate_ratio_log_e_value(series.failures_treatment, series.failures_control, share)
    f_t, f_c = float(series.failures_treatment.sum()), float(series.failures_control.sum())
    e_t, e_c = max(window.exposures_treatment, 1), max(window.exposures_control, 1)
    ratio = (f_t / e_t) / (f_c / e_c) if f_c else (math.inf if f_t else 1.0)
    return MetricEvidence(
        "failures",
        ratio,
        None,
        window.exposures_treatment,
        window.exposures_control,
        log_e,
        log_e + carried,
    )


def mean_evidence(
    guardrail: Guardrail, treatment: Arm, control: Arm, alpha: float, carried: float = 0.0
) -> MetricEvidence:
    """A mean guardrail's harm estimate, always-valid interval and e-value: the one
    computation the controller decides on and the flag page draws (τ and margin relative to
    the control mean when the guardrail says so; an omitted τ is the plan's default)."""
    scale = abs(control.mean) if guardrail.relative else 1.0
    tau = guardrail.tau * scale
    margin = guardrail.margin * scale
    if tau <= 0:
        tau = guardrail.tau or 1e-9
    test = mean_test(
        treatment,
        control,
        tau=tau,
        alpha=alpha,
        margin=margin,
        harm_sign=HARM_SIGN[guardrail.metric],
    )
    return MetricEvidence(
        guardrail.metric,
        test.estimate,
        test.interval,
        treatment.n,
        control.n,
        test.log_e_value,
        test.log_e_value + carried,
    )


def gather_evidence(
    plan: PlanSpec, percentage: int, window: StageWindow, carried: dict[str, float]
) -> tuple[MetricEvidence, ...]:
    """Every guardrail that has data: failures once both arms were exposed, means after
    the burn-in (plan.burn_in_clients per arm)."""
    evidence: list[MetricEvidence] = []
    alpha_each = plan.alpha / max(1, len(plan.guardrails))
    for guardrail in plan.guardrails:
        prior = carried.get(guardrail.metric, 0.0)
        if guardrail.metric == "failures":
            if window.exposures_treatment and window.exposures_control:
                evidence.append(_failure_evidence(window, percentage, prior))
            continue
        treatment, control = window.means.get(guardrail.metric, (Arm(0, 0, 0), Arm(0, 0, 0)))
        if min(treatment.n, control.n) >= plan.burn_in_clients:
            evidence.append(mean_evidence(guardrail, treatment, control, alpha_each, prior))
    return tuple(evidence)


def decide(
    plan: PlanSpec,
    stage_index: int,
    stage_age_hours: float,
    window: StageWindow,
    carried: dict[str, float] | None = None,
) -> Verdict:
    """The decision rule of docs/guardrails.md for one ramping segment at one instant."""
    stage = plan.stages[min(stage_index, len(plan.stages) - 1)]
    evidence = gather_evidence(plan, stage.percentage, window, carried or {})
    # Bonferroni over every guardrail of the plan, not only those with data so far: a
    # threshold that fell to 1/α while one metric had data would spend α twice (it cost
    # 1.25 points of false rollbacks in the A/A simulation).
    threshold = rollback_threshold(len(plan.guardrails), plan.alpha)
    srm = 0.0
    if 0 < stage.percentage < 100:
        srm = srm_log_bayes_factor(
            window.exposures_treatment, window.exposures_control, stage.percentage / 100.0
        )
    common: dict[str, Any] = {
        "threshold": threshold,
        "evidence": evidence,
        "srm_log_bayes_factor": srm,
        "details": {
            "stage": stage_index,
            "percentage": stage.percentage,
            "stageAgeHours": round(stage_age_hours, 3),
            "treatmentClients": window.treatment_clients,
            "controlClients": window.control_clients,
            "exposures": [window.exposures_treatment, window.exposures_control],
        },
    }
    fired = [e for e in evidence if e.log_e_total >= math.log(threshold)]
    if fired:
        worst = max(fired, key=lambda e: e.log_e_total)
        return Verdict(
            ROLLBACK,
            f"{worst.metric}: e-value {math.exp(min(worst.log_e_total, 700.0)):.3g} "
            f"reached {threshold:g} (m/α)",
            metric=worst.metric,
            **common,
        )
    if srm >= math.log(SRM_BAYES_FACTOR):
        return Verdict(
            HOLD,
            f"sample-ratio mismatch: {window.exposures_treatment} treatment vs "
            f"{window.exposures_control} control exposures at {stage.percentage} %",
            hold_reason=HOLD_SRM,
            **common,
        )
    no_data_for = (
        window.hours_since_data if window.hours_since_data is not None else stage_age_hours
    )
    if no_data_for >= plan.no_data_hours:
        return Verdict(HOLD, f"no data for {no_data_for:.1f} h", hold_reason=HOLD_NO_DATA, **common)
    if stage.max_duration_hours and stage_age_hours >= stage.max_duration_hours:
        return Verdict(
            HOLD,
            f"stage {stage_index} has lasted {stage_age_hours:.1f} h "
            f"(maximum {stage.max_duration_hours:g} h)",
            hold_reason=HOLD_TIMEOUT,
            **common,
        )
    if (
        stage_age_hours >= stage.min_dwell_hours
        and window.treatment_clients >= stage.min_treatment_clients
    ):
        return Verdict(
            ADVANCE,
            f"stage {stage_index} ({stage.percentage} %) passed: "
            f"{stage_age_hours:.1f} h ≥ {stage.min_dwell_hours:g} h, "
            f"{window.treatment_clients} ≥ {stage.min_treatment_clients} treatment clients, "
            "no guardrail fired",
            **common,
        )
    return Verdict(CONTINUE, "collecting evidence", **common)
