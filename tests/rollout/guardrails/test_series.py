"""rollout.guardrails.series: a stage drawn hour by hour ends where the controller's whole-stage
sum stands, whatever the buckets hold."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.guardrails.plan import parse_plan
from rollout.guardrails.series import SUMMED, Bucket, FailureMinute, stage_series, stage_window

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
PLAN = parse_plan(
    [{"percentage": 10}, {"percentage": 100}],
    [{"metric": "failures"}, {"metric": "latency", "margin": 0.1}],
    burn_in_clients=2,
)

minute_rows = st.lists(
    st.tuples(
        st.integers(0, 5 * 60 - 1),  # minute of the stage
        st.sampled_from(["treatment", "control"]),
        st.integers(0, 50),  # exposures
        st.integers(0, 3),  # failures
        st.integers(0, 20),  # latency n
        st.floats(0.01, 2.0),  # latency mean
    ),
    max_size=60,
)


def _sums(exposures: int, failures: int, n: int, mean: float) -> dict[str, float]:
    return {
        "exposures": exposures,
        "client_exposures": 0,
        "clients": n,
        "failures": failures,
        "latency_n": n,
        "latency_sum": n * mean,
        "latency_sumsq": n * mean * mean,
    }


@settings(max_examples=60, deadline=None)
@given(minute_rows)
def test_stage_series__hourly_points__end_at_the_whole_stage_window(rows) -> None:
    now = START + timedelta(hours=5)
    minutes = [
        (START + timedelta(minutes=m), arm, _sums(e, min(f, e), n, mean))
        for m, arm, e, f, n, mean in rows
    ]
    failures = [
        FailureMinute(arm, minute, sums["exposures"], sums["failures"])
        for minute, arm, sums in minutes
        if any(s["failures"] for mi, _, s in minutes if mi == minute)
    ]
    # As the controller reads it: one bucket per arm over the whole stage.
    whole: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(SUMMED, 0.0))
    latest: dict[str, datetime] = {}
    # As the flag page reads it: one bucket per arm and hour.
    hourly: dict[tuple[str, datetime], dict[str, float]] = defaultdict(
        lambda: dict.fromkeys(SUMMED, 0.0)
    )
    hourly_latest: dict[tuple[str, datetime], datetime] = {}
    for minute, arm, sums in minutes:
        hour = minute.replace(minute=0)
        for name, value in sums.items():
            whole[arm][name] += value
            hourly[arm, hour][name] += value
        latest[arm] = max(latest.get(arm, minute), minute)
        hourly_latest[arm, hour] = max(hourly_latest.get((arm, hour), minute), minute)

    decided, _ = stage_window([Bucket(a, latest[a], whole[a]) for a in whole], failures, now)
    hours = [Bucket(a, hourly_latest[a, h], sums) for (a, h), sums in hourly.items()]
    points = stage_series(
        PLAN, 10, {}, hours, failures, [*(b.latest.replace(minute=59) for b in hours), now]
    )

    drawn = points[-1]
    assert drawn.at == now
    assert drawn.window.exposures_treatment == decided.exposures_treatment
    assert drawn.window.exposures_control == decided.exposures_control
    for metric, arms in decided.means.items():
        for drawn_arm, decided_arm in zip(drawn.window.means[metric], arms, strict=True):
            # Summed in another order: equal up to rounding.
            assert drawn_arm.n == decided_arm.n
            assert drawn_arm.total == pytest.approx(decided_arm.total)
            assert drawn_arm.total_squares == pytest.approx(decided_arm.total_squares)
    assert drawn.window.hours_since_data == decided.hours_since_data
    # Cumulative: no point holds more than the next.
    exposures = [p.window.exposures_treatment + p.window.exposures_control for p in points]
    assert exposures == sorted(exposures)


def test_stage_window__a_bucket_counts_from_its_last_minute_on() -> None:
    bucket = Bucket("treatment", START + timedelta(minutes=59), _sums(10, 1, 3, 0.5))

    before, _ = stage_window([bucket], [], START + timedelta(minutes=58))
    after, failures = stage_window([bucket], [], START + timedelta(minutes=59))

    assert before.exposures_treatment == 0
    assert before.hours_since_data is None
    assert after.exposures_treatment == 10
    assert failures == (1.0, 0.0)


@settings(max_examples=60, deadline=None)
@given(minute_rows, st.lists(st.integers(-30, 6 * 60), min_size=1, max_size=12))
def test_stage_series__every_point__is_stage_window_at_its_instant(rows, offsets) -> None:
    """The one pass over the buckets (the flag page draws 70 points per segment) gives, at
    every instant, exactly the window the controller computes alone."""
    buckets = [
        Bucket(arm, START + timedelta(minutes=m), _sums(e, min(f, e), n, mean))
        for m, arm, e, f, n, mean in rows
    ]
    failures = [
        FailureMinute(b.arm, b.latest, b.sums["exposures"], b.sums["failures"])
        for b in buckets
        if b.sums["failures"]
    ]
    instants = [START + timedelta(minutes=o) for o in offsets]

    points = stage_series(PLAN, 10, {"failures": 0.5}, buckets, failures, instants)

    assert [p.at for p in points] == sorted(set(instants))
    for point in points:
        window, failed = stage_window(buckets, failures, point.at)
        assert point.failures == failed
        assert _same_window(point.window, window)


def _same_window(a, b) -> bool:
    arrays = ("exposures_treatment", "exposures_control", "failures_treatment", "failures_control")
    return (
        (a.treatment_clients, a.control_clients, a.exposures_treatment, a.exposures_control)
        == (b.treatment_clients, b.control_clients, b.exposures_treatment, b.exposures_control)
        and a.means == b.means
        and a.hours_since_data == b.hours_since_data
        and all(
            getattr(a.failures, name).tolist() == getattr(b.failures, name).tolist()
            for name in arrays
        )
    )
