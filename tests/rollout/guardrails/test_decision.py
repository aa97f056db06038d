"""The decision rule of docs/guardrails.md, at chosen points, with evidence checked against
hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rollout.guardrails import decision
from rollout.guardrails.decision import FailureSeries, StageWindow, decide
from rollout.guardrails.plan import (
    DEFAULT_GUARDRAILS,
    DEFAULT_STAGES,
    PlanInvalid,
    PlanSpec,
    parse_plan,
)
from rollout.guardrails.simulation import simulate
from rollout.guardrails.statistics import Arm

PLAN = PlanSpec(DEFAULT_STAGES, DEFAULT_GUARDRAILS, alpha=0.05)


def _arm(values: list[float]) -> Arm:
    array = np.asarray(values, dtype=float)
    return Arm(array.size, float(array.sum()), float(np.square(array).sum()))


def _window(
    *,
    clients: tuple[int, int] = (0, 0),
    exposures: tuple[int, int] = (0, 0),
    means: dict[str, tuple[Arm, Arm]] | None = None,
    failures: FailureSeries | None = None,
    hours_since_data: float | None = 0.0,
) -> StageWindow:
    return StageWindow(
        treatment_clients=clients[0],
        control_clients=clients[1],
        exposures_treatment=exposures[0],
        exposures_control=exposures[1],
        means=means or {},
        failures=failures or FailureSeries.empty(),
        hours_since_data=hours_since_data,
    )


def test_decide__dwell_and_clients_met__advance() -> None:
    verdict = decide(PLAN, 0, 2.5, _window(clients=(31, 3000), exposures=(31, 3000)))

    assert verdict.action == decision.ADVANCE


@pytest.mark.parametrize(("hours", "clients"), [(1.9, 100), (5.0, 29)])
def test_decide__dwell_or_clients_short__continue(hours, clients) -> None:
    verdict = decide(PLAN, 0, hours, _window(clients=(clients, 3000), exposures=(30, 3000)))

    assert verdict.action == decision.CONTINUE


def test_decide__latency_regression__rollback_with_hand_checked_evidence() -> None:
    # Treatment 0.10 ± sd 0.05 vs control 0.05 ± 0.05, 400 clients each.
    rng = np.random.default_rng(0)
    treatment = _arm(list(0.10 + 0.05 * rng.standard_normal(400)))
    control = _arm(list(0.05 + 0.05 * rng.standard_normal(400)))
    window = _window(
        clients=(400, 400), exposures=(400, 400), means={"latency": (treatment, control)}
    )

    verdict = decide(PLAN, 2, 3.0, window)

    assert (verdict.action, verdict.metric) == (decision.ROLLBACK, "latency")
    assert verdict.threshold == 80  # four guardrails, alpha 0.05
    evidence = {e.metric: e for e in verdict.evidence}["latency"]
    d = treatment.mean - control.mean
    v = treatment.variance / 400 + control.variance / 400
    tau2 = 0.01**2
    by_hand = (
        math.log(2)
        + 0.5 * math.log(v / (v + tau2))
        + tau2 * d * d / (2 * v * (v + tau2))
        + math.log(0.5 * math.erfc(-(0.01 * d / math.sqrt(v * (v + tau2))) / math.sqrt(2)))
    )
    assert evidence.log_e_stage == pytest.approx(by_hand, rel=1e-9)
    assert evidence.estimate == pytest.approx(d)
    low, high = evidence.interval or (0, 0)
    assert low < d < high
    assert (evidence.n_treatment, evidence.n_control) == (400, 400)


def test_decide__carried_evidence_multiplies_across_stages() -> None:
    window = _window(clients=(10, 10), exposures=(50, 950))

    fresh = decide(PLAN, 1, 1.0, window)
    carried = decide(PLAN, 1, 1.0, window, {"failures": math.log(81)})

    assert fresh.action == decision.CONTINUE
    assert (carried.action, carried.metric) == (decision.ROLLBACK, "failures")


def test_decide__crashes_doubled__rollback_on_rate_ratio() -> None:
    minutes = 600
    exposures_t = np.full(minutes, 25.0)
    exposures_c = np.full(minutes, 75.0)
    crashes_t = np.zeros(minutes)
    crashes_c = np.zeros(minutes)
    crashes_t[::6] = 1  # 100 crashes among 15,000 treatment exposures
    crashes_c[::4] = 1  # 150 among 45,000 control: half the rate
    window = _window(
        clients=(15000, 45000),
        exposures=(15000, 45000),
        failures=FailureSeries(exposures_t, exposures_c, crashes_t, crashes_c),
    )

    verdict = decide(PLAN, 2, 10.0, window)

    assert (verdict.action, verdict.metric) == (decision.ROLLBACK, "failures")
    evidence = verdict.evidence[0]
    assert evidence.estimate == pytest.approx((100 / 15000) / (150 / 45000))


def test_decide__sample_ratio_mismatch__hold_srm() -> None:
    verdict = decide(PLAN, 1, 1.0, _window(clients=(20, 980), exposures=(400, 1000)))

    assert (verdict.action, verdict.hold_reason) == (decision.HOLD, "srm")


def test_decide__no_data_for_a_day__hold_no_data() -> None:
    verdict = decide(PLAN, 2, 30.0, _window(clients=(5, 20), hours_since_data=24.5))

    assert (verdict.action, verdict.hold_reason) == (decision.HOLD, "no_data")


def test_decide__stage_past_maximum__hold_timeout() -> None:
    verdict = decide(PLAN, 2, 72.5, _window(clients=(100, 300), exposures=(100, 300)))

    assert (verdict.action, verdict.hold_reason) == (decision.HOLD, "timeout")


def test_decide__means_wait_for_burn_in() -> None:
    treatment = _arm([1.0] * 10 + [0.0] * 39)  # 49 clients: still burning in
    control = _arm([0.0] * 49)
    window = _window(clients=(49, 49), exposures=(49, 49), means={"latency": (treatment, control)})

    verdict = decide(PLAN, 2, 1.0, window)

    assert "latency" not in {e.metric for e in verdict.evidence}


@pytest.mark.parametrize(
    ("stages", "field"),
    [
        ([], "stages"),
        ([{"percentage": 0}], "stages[0].percentage"),
        ([{"percentage": 10}, {"percentage": 5}], "stages[1].percentage"),
        ([{"percentage": 5, "minDwellHours": "2"}], "stages[0].minDwellHours"),
        (
            [{"percentage": 5, "minDwellHours": 5, "maxDurationHours": 1}],
            "stages[0].maxDurationHours",
        ),
    ],
)
def test_parse_plan__bad_stage__names_field(stages, field) -> None:
    with pytest.raises(PlanInvalid) as raised:
        parse_plan(stages, [])

    assert str(raised.value).startswith(f"{field}:")


def test_parse_plan__bad_guardrail__names_field() -> None:
    with pytest.raises(PlanInvalid, match=r"^guardrails\[1\]\.metric:"):
        parse_plan([{"percentage": 50}], [{"metric": "latency"}, {"metric": "happiness"}])


def test_simulation__aa_rarely_fires_regression_always_does() -> None:
    healthy = simulate("aa", runs=30, seed=3)
    crashing = simulate("crash2x", runs=10, seed=3)

    assert healthy["rollback_rate"] <= 0.1
    assert crashing["rollback_rate"] == 1.0
    assert crashing["median_hours_to_rollback"] <= 30
    assert set(healthy) >= {
        "scenario",
        "runs",
        "rollback_rate",
        "rollback_rate_ci",
        "median_hours_to_rollback",
        "median_blast_radius",
    }
