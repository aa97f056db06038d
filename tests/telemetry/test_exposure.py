"""Server-side exposure counts: counted per decision in memory, flushed into MetricBucket."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import OperationalError
from django.db.models import Sum

from access.api_keys import api_key_create
from rollout.models import Environment, MetricBucket
from rollout.selectors import segment_identity
from telemetry import exposure
from telemetry.exposure import ExposureCounter, counter, exposure_count, exposure_flush
from tests.support.demo import load_demo
from tests.support.telemetry import SEGMENT_IDENTITY

pytestmark = pytest.mark.django_db

HIGH_END = {"memoryGb": 16, "benchmarkMs": 10, "webgpu": True, "rttMs": 50, "cores": 12}


def test_exposure_count__flushed__added_to_the_minute_bucket(flags) -> None:
    for _ in range(3):
        exposure_count("production", "smart-compose", SEGMENT_IDENTITY, "treatment")
    exposure_count("production", "smart-compose", SEGMENT_IDENTITY, "control")

    assert exposure_flush() == 4
    exposure_count("production", "smart-compose", SEGMENT_IDENTITY, "treatment")
    assert exposure_flush() == 1

    rows = MetricBucket.objects.values_list("arm", "exposures", "clients")
    assert sorted(rows) == [("control", 1, 0), ("treatment", 4, 0)]
    assert exposure_flush() == 0  # nothing left


def test_exposure_count__unknown_environment__dropped_at_flush(flags) -> None:
    exposure_count("no-such-environment", "smart-compose", SEGMENT_IDENTITY, "treatment")

    assert exposure_flush() == 0
    assert counter.pending() == {}
    assert not MetricBucket.objects.exists()


def test_exposure_flush__database_down__counts_kept_for_next_flush(flags, monkeypatch) -> None:
    exposure_count("production", "smart-compose", SEGMENT_IDENTITY, "treatment")
    real_write = exposure._write

    def down(counts: Any) -> int:
        raise OperationalError("connection refused")

    monkeypatch.setattr(exposure, "_write", down)
    assert exposure_flush() == 0
    exposure_count("production", "smart-compose", SEGMENT_IDENTITY, "treatment")
    monkeypatch.setattr(exposure, "_write", real_write)

    assert exposure_flush() == 2
    assert MetricBucket.objects.get().exposures == 2


def test_exposure_flush__failing_too_long__oldest_minutes_dropped(monkeypatch) -> None:
    now = [0.0]
    local = ExposureCounter(clock=lambda: now[0])
    monkeypatch.setattr(exposure, "MAX_PENDING_KEYS", 3)
    monkeypatch.setattr(exposure, "_write", lambda counts: (_ for _ in ()).throw(OperationalError))
    for minute in range(5):
        now[0] = minute * 60.0
        local.count("production", "f", 7, "treatment")

    local.flush()

    assert sorted(key[-1] for key in local.pending()) == [120, 180, 240]


def test_exposure_count__hot_path__no_thread_when_disabled_and_cheap() -> None:
    local = ExposureCounter()

    started = time.perf_counter()
    for _ in range(20_000):
        local.count("production", "smart-compose", SEGMENT_IDENTITY, "treatment")
    per_count = (time.perf_counter() - started) / 20_000

    assert local.pending() == {next(iter(local.pending())): 20_000}
    assert local._flusher is None  # EDGEFLAGS_EXPOSURE_FLUSH_S = 0 in these tests
    assert per_count < 20e-6  # budget: ≤ 5 µs per decision; a few hundred ns measured


@pytest.fixture
def demo_key(publish) -> str:
    load_demo(publish)
    environment = Environment.objects.get(key="production")
    return publish(lambda: api_key_create(environment=environment, scope="client", name="t"))[1]


def test_evaluate_and_ofrep__rollout_decisions__exposures_counted_per_arm(api, demo_key) -> None:
    context = {"targetingKey": "u-1", **HIGH_END}

    evaluated = api("POST", "/api/v1/evaluate", demo_key, {"context": context}).json()["flags"]
    in_arms = {k: d["metadata"] for k, d in evaluated.items() if "arm" in d["metadata"]}
    assert in_arms, "the demo has a rollout in production"
    flag, metadata = sorted(in_arms.items())[0]
    api("POST", f"/ofrep/v1/evaluate/flags/{flag}", demo_key, {"context": context})
    api("POST", "/ofrep/v1/evaluate/flags", demo_key, {"context": context})

    counted = {key[:4]: n for key, n in counter.pending().items()}
    identity = segment_identity(metadata["segment"])
    assert counted[("production", flag, identity, metadata["arm"])] == 3
    assert {key[1] for key in counted} == set(in_arms)  # only decisions in a rollout arm

    minutes = {datetime.fromtimestamp(key[-1], tz=UTC) for key in counter.pending()}
    exposure_flush()

    buckets = MetricBucket.objects.filter(
        flag=flag, segment_identity=identity, arm=metadata["arm"], minute__in=minutes
    )
    assert buckets.aggregate(n=Sum("exposures"))["n"] == 3


def test_evaluate__flag_without_rollout__nothing_counted(api, client_key, flags) -> None:
    api("POST", "/api/v1/evaluate", client_key, {"context": {"targetingKey": "u-1"}})

    assert counter.pending() == {}
