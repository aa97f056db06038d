"""Folding the buffer into MetricBucket rows: sums by hand, the failure cap, exactly once."""

from __future__ import annotations

import importlib
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone

from ops.schedules import DEFAULT_PERIODIC_TASKS
from rollout.models import FailureMark, MetricBucket, SeenEvent
from telemetry import aggregates
from telemetry.aggregates import telemetry_fold, telemetry_purge
from telemetry.buffer import buffered_count
from telemetry.tasks import fold_telemetry, purge_telemetry
from tests.support.metrics import scrape, total
from tests.support.telemetry import (
    BUFFER_MODES,
    FLAG,
    OTHER_FLAG,
    SEGMENT_IDENTITY,
    Events,
    hour_start,
)

pytestmark = pytest.mark.django_db

BUCKET_FIELDS = [
    "exposures", "client_exposures", "clients", "failures", "latency_n", "latency_sum",
    "latency_sumsq", "inference_ms_n", "inference_ms_sum", "energy_n", "energy_sum",
    "energy_sumsq", "rating_n", "rating_sum", "rating_sumsq",
]  # fmt: skip


def _buckets() -> dict[tuple[str, int, str, Any], dict[str, Any]]:
    """Every bucket's non-zero fields, by (flag, segment identity, arm, minute)."""
    rows = MetricBucket.objects.values("flag", "segment_identity", "arm", "minute", *BUCKET_FIELDS)
    return {
        (r["flag"], r["segment_identity"], r["arm"], r["minute"]): {
            f: r[f] for f in BUCKET_FIELDS if r[f]
        }
        for r in rows
    }


def _sent_batches(send) -> dict[str, Any]:
    """Two clients' batches over two flags, two arms and two minutes; the expected buckets.

    Every expected value is a binary fraction, so sums compare exactly."""
    minute = hour_start(2) + timedelta(minutes=10)
    later = minute + timedelta(minutes=1, seconds=59)
    a, b = Events(), Events()
    device_a = [
        *(a("exposure", minute) for _ in range(3)),
        *(a("inference", minute, ms=ms) for ms in (50, 150, 200, 80)),  # 2 of 4 above p95 100
        a("energy", minute + timedelta(seconds=30), millijoules=100),
        a("energy", minute + timedelta(seconds=59), millijoules=300),
        a("feedback", minute, rating=4),
        a("feedback", minute, rating=5),
        a("exposure", later, arm="control"),
    ]
    device_b = [
        b("inference", minute, ms=120),  # 1 of 1 above p95
        b("feedback", minute, rating=2),
        b("inference", minute, ms=30, flag=OTHER_FLAG),  # no frozen p95: no latency share
    ]
    assert send("device-a", device_a).status_code == 202
    assert send("device-b", device_b).status_code == 202
    later_minute = minute + timedelta(minutes=1)
    return {
        (FLAG, SEGMENT_IDENTITY, "treatment", minute): {
            "clients": 2,
            "client_exposures": 3,
            "latency_n": 2,
            "latency_sum": 0.5 + 1.0,
            "latency_sumsq": 0.25 + 1.0,
            "inference_ms_n": 5,
            "inference_ms_sum": 50 + 150 + 200 + 80 + 120,
            "energy_n": 1,
            "energy_sum": 200.0,
            "energy_sumsq": 40_000.0,
            "rating_n": 2,
            "rating_sum": 4.5 + 2,
            "rating_sumsq": 4.5**2 + 2**2,
        },
        (FLAG, SEGMENT_IDENTITY, "control", later_minute): {"clients": 1, "client_exposures": 1},
        (OTHER_FLAG, SEGMENT_IDENTITY, "treatment", minute): {
            "clients": 1,
            "inference_ms_n": 1,
            "inference_ms_sum": 30.0,
        },
    }


def test_fold__two_clients__buckets_match_hand_computed_sums(send, flags, buffer_mode) -> None:
    expected = _sent_batches(send)

    outcome = telemetry_fold()

    assert outcome.batches == 2
    assert _buckets() == expected
    assert buffered_count() == 0


def test_fold__metrics__batches_duration_lag_and_last_success(send, flags, buffer_mode) -> None:
    _sent_batches(send)
    before, started = scrape(), time.time()

    telemetry_fold()

    after = scrape()
    folded = "edgeflags_telemetry_folded_batches_total"
    assert total(after, folded) - total(before, folded) == 2
    runs = "edgeflags_telemetry_fold_duration_seconds_count"
    assert total(after, runs) - total(before, runs) == 1
    assert 0 <= total(after, "edgeflags_telemetry_fold_lag_seconds") <= time.time() - started + 60
    assert total(after, "edgeflags_telemetry_fold_success_timestamp_seconds") >= started
    assert total(after, "edgeflags_telemetry_buffered_batches") == 0


def test_fold__run_again__nothing_counted_twice(send, flags, buffer_mode) -> None:
    expected = _sent_batches(send)

    telemetry_fold()
    again = telemetry_fold()

    assert again.batches == 0
    assert _buckets() == expected


def test_fold__one_batch_per_chunk__same_sums(send, flags, buffer_mode) -> None:
    expected = _sent_batches(send)

    assert telemetry_fold(chunk=1).batches == 2

    assert _buckets() == expected


def _failures(flag: str, hour: Any) -> int:
    rows = MetricBucket.objects.filter(
        flag=flag, minute__gte=hour, minute__lt=hour + timedelta(hours=1)
    )
    return rows.aggregate(n=Sum("failures"))["n"] or 0


def test_fold__crash_looping_client__one_failure_per_client_flag_and_hour(
    send, flags, buffer_mode
) -> None:
    first_hour, next_hour = hour_start(3), hour_start(2)
    loop, other = Events(), Events()
    # 50 crashes in one hour, in five batches folded at different times
    crashes = [loop("crash", first_hour + timedelta(minutes=m)) for m in range(50)]
    for start in range(0, 50, 10):
        assert send("device-loop", crashes[start : start + 10]).status_code == 202
        if start == 20:
            telemetry_fold(chunk=1)
    send("device-loop", [loop("crash", first_hour + timedelta(minutes=5), flag=OTHER_FLAG)])
    send("device-loop", [loop("crash", next_hour + timedelta(minutes=m)) for m in range(5)])
    failed_inference = [
        other("inference", first_hour + timedelta(minutes=m), ms=10, ok=False) for m in range(2)
    ]
    send("device-other", failed_inference)
    send("device-fine", [other("inference", first_hour, ms=10, ok=True)])

    telemetry_fold(chunk=1)

    assert _failures(FLAG, first_hour) == 2  # device-loop once, device-other once
    assert _failures(FLAG, next_hour) == 1  # device-loop again in the next hour
    assert _failures(OTHER_FLAG, first_hour) == 1  # capped per flag, not across flags
    first = MetricBucket.objects.get(flag=FLAG, minute=first_hour, arm="treatment")
    assert first.failures == 2  # both counted at their first failing minute
    assert FailureMark.objects.count() == 4


def test_fold__dies_before_commit__nothing_applied_then_all_once(
    send, flags, buffer_mode, monkeypatch
) -> None:
    expected = _sent_batches(send)
    real_add = aggregates.bucket_add
    calls = []

    def add_then_die(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        real_add(*args, **kwargs)

    monkeypatch.setattr(aggregates, "bucket_add", add_then_die)
    with pytest.raises(RuntimeError):
        telemetry_fold()
    assert MetricBucket.objects.count() == 0
    assert buffered_count() == 2

    monkeypatch.setattr(aggregates, "bucket_add", real_add)
    telemetry_fold()

    assert _buckets() == expected
    assert buffered_count() == 0


@pytest.mark.parametrize("buffer_mode", [m for m in BUFFER_MODES if m == "redis"], indirect=True)
def test_fold__dies_after_commit_before_trim__entries_skipped_next_time(
    send, flags, buffer_mode, monkeypatch
) -> None:
    expected = _sent_batches(send)

    def trim_dies(epoch: str, position: int) -> int:
        raise ConnectionError("worker killed")

    real_trim = aggregates.redis_trim
    monkeypatch.setattr(aggregates, "redis_trim", trim_dies)
    with pytest.raises(ConnectionError):
        telemetry_fold()
    assert buffered_count() == 2  # committed, but still in the list
    monkeypatch.setattr(aggregates, "redis_trim", real_trim)

    outcome = telemetry_fold()

    assert outcome.batches == 0  # both skipped: at or below the committed cursor
    assert _buckets() == expected
    assert buffered_count() == 0


def test_fold__deleted_environment__its_batches_dropped(send, flags, buffer_mode, publish) -> None:
    _sent_batches(send)
    publish(lambda: flags.delete())

    telemetry_fold()

    assert MetricBucket.objects.count() == 0
    assert buffered_count() == 0


def test_fold_task__runs_the_fold_and_is_scheduled(send, flags, buffer_mode) -> None:
    expected = _sent_batches(send)

    assert fold_telemetry.apply().get() == 2

    assert _buckets() == expected
    (spec,) = [s for s in DEFAULT_PERIODIC_TASKS if s.task == "telemetry.tasks.fold_telemetry"]
    assert spec.every_seconds == 10


def test_telemetry_purge__ids_past_dedupe_window_marks_past_48_hours__deleted(flags) -> None:
    now = timezone.now()
    SeenEvent.objects.create(environment=flags, event_id="old", seen_at=now - timedelta(hours=7))
    SeenEvent.objects.create(environment=flags, event_id="new", seen_at=now - timedelta(hours=5))
    for window, client in ((now - timedelta(hours=50), "old"), (now - timedelta(hours=1), "new")):
        FailureMark.objects.create(environment=flags, flag=FLAG, client=client, window=window)

    deleted = telemetry_purge(now)

    assert deleted == {"seen_events": 1, "failure_marks": 1, "metric_buckets": 0}
    assert list(SeenEvent.objects.values_list("event_id", flat=True)) == ["new"]
    assert list(FailureMark.objects.values_list("client", flat=True)) == ["new"]


def test_telemetry_purge__buckets_past_retention__deleted_on_schedule(flags, settings) -> None:
    settings.EDGEFLAGS_METRIC_RETENTION_DAYS = 30
    now = timezone.now().replace(second=0, microsecond=0)
    for age in (timedelta(days=31), timedelta(days=29)):
        MetricBucket.objects.create(
            environment=flags,
            flag=FLAG,
            segment_identity=SEGMENT_IDENTITY,
            arm="control",
            minute=now - age,
        )

    deleted = purge_telemetry.apply().get()

    assert deleted["metric_buckets"] == 1
    assert list(MetricBucket.objects.values_list("minute", flat=True)) == [now - timedelta(days=29)]
    (spec,) = [s for s in DEFAULT_PERIODIC_TASKS if s.task == "telemetry.tasks.purge_telemetry"]
    assert spec.crontab == "15 * * * *"


def test_task_names_migration__beat_rows_of_the_old_names__follow_the_tasks() -> None:
    from celery import current_app
    from django.apps import apps
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    migration = importlib.import_module("telemetry.migrations.0001_task_names")
    every = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.SECONDS)
    old = {"fold": "rollout.tasks.fold_telemetry", "tick": "rollout.tasks.rollout_tick"}
    for name, task in old.items():
        PeriodicTask.objects.create(name=name, task=task, interval=every)

    migration.forwards(apps, None)

    tasks = dict(PeriodicTask.objects.filter(name__in=old).values_list("name", "task"))
    assert tasks == {"fold": "telemetry.tasks.fold_telemetry", "tick": "rollout.tasks.rollout_tick"}
    assert {"telemetry.tasks.fold_telemetry", "telemetry.tasks.purge_telemetry"} <= set(
        current_app.tasks
    )
    migration.backwards(apps, None)
    assert PeriodicTask.objects.get(name="fold").task == "rollout.tasks.fold_telemetry"
