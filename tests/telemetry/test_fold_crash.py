"""A real Celery worker killed (SIGKILL) while folding: nothing lost, nothing counted twice."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from django.conf import settings

from tests.support.databases import fresh_database
from tests.support.processes import BIN, REPO, child_env, manage, running, worker_argv
from tests.support.telemetry import BUFFER_MODES
from tests.telemetry.crash_driver import P95_MS, base_hour, batch

pytestmark = pytest.mark.services

BATCHES = 500
CHUNK = 2  # batches per fold transaction: small, so that the fold takes seconds
KILL_ROUNDS = 3


def _driver(env: dict[str, str], *args: str) -> Any:
    completed = subprocess.run(
        [sys.executable, "-m", "tests.telemetry.crash_driver", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        raise AssertionError(f"crash_driver {args} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _expected(base: Any) -> dict[str, Any]:
    """The aggregates the batches must produce, worked out without the fold code."""
    totals: dict[str, Any] = dict.fromkeys(
        ["client_exposures", "clients", "latency_n", "latency_sum", "latency_sumsq"], 0
    )
    totals.update(inference_ms_n=0, inference_ms_sum=0)
    failed: set[tuple[str, int]] = set()
    for i in range(BATCHES):
        client, events = batch(i, base)
        inferences = [e for e in events if e["type"] == "inference"]
        share = sum(e["ms"] > P95_MS for e in inferences) / len(inferences)
        totals["clients"] += 1  # one (flag, segment, arm, minute) group per batch
        totals["client_exposures"] += sum(e["type"] == "exposure" for e in events)
        totals["latency_n"] += 1
        totals["latency_sum"] += share
        totals["latency_sumsq"] += share * share
        totals["inference_ms_n"] += len(inferences)
        totals["inference_ms_sum"] += sum(e["ms"] for e in inferences)
        if any(e["type"] == "crash" or e.get("ok") is False for e in events):
            failed.add((client, events[0]["timestamp"] // 3_600_000))
    return totals | {"failures": len(failed), "failure_marks": len(failed)}


@contextmanager
def _stack(mode: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], Callable[[], int]]]:
    """A migrated database (and Redis prefix) of its own; yields its env and a buffer counter."""
    suffix = os.urandom(4).hex()
    overrides: dict[str, str | None] = {
        "EDGEFLAGS_VAR_DIR": str(tmp_path),
        "EDGEFLAGS_TELEMETRY_FOLD_CHUNK": str(CHUNK),
        "EDGEFLAGS_CELERY_QUEUE": f"edgeflags-test-{suffix}",
        "EDGEFLAGS_CACHE_PREFIX": f"edgeflags-test-{suffix}",
        "EDGEFLAGS_TELEMETRY_PREFIX": f"edgeflags-test-{suffix}:telemetry",
        "REDIS_URL": settings.REDIS_URL if mode == "redis" else None,
        "DATABASE_URL": None,  # SQLite under EDGEFLAGS_VAR_DIR unless PostgreSQL is there
    }
    postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    with fresh_database() if postgres else _no_database() as database_url:
        overrides["DATABASE_URL"] = database_url
        env = child_env(overrides)
        manage(env, "migrate", "--no-input")
        if mode == "redis":
            client = redis.Redis.from_url(settings.REDIS_URL)
            key = f"{overrides['EDGEFLAGS_TELEMETRY_PREFIX']}:events"
            try:
                yield env, lambda: int(client.llen(key))
            finally:
                stale = list(client.scan_iter(f"edgeflags-test-{suffix}*", count=1000))
                if stale:
                    client.delete(*stale)
        elif database_url:
            with psycopg.connect(database_url, autocommit=True) as conn:
                yield env, lambda: _count(conn.execute, "rollout_telemetrybatch")
        else:
            with sqlite3.connect(tmp_path / "edgeflags.sqlite3", isolation_level=None) as conn:
                yield env, lambda: _count(conn.execute, "rollout_telemetrybatch")


@contextmanager
def _no_database() -> Iterator[None]:
    yield None


def _count(execute: Callable[..., Any], table: str) -> int:
    return int(execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _send_fold_task(env: dict[str, str]) -> None:
    subprocess.run(
        [str(BIN / "celery"), "-A", "config", "call", "telemetry.tasks.fold_telemetry"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def _kill_while_folding(
    env: dict[str, str], buffered: Callable[[], int], tmp_path: Path, round_: int
) -> bool:
    """Start a worker, have it fold, SIGKILL it once it made progress; False if it finished."""
    start = buffered()
    with running(f"worker-{round_}", worker_argv(), env, tmp_path) as worker:
        _send_fold_task(env)
        deadline = time.monotonic() + 90
        while buffered() >= start:
            if time.monotonic() > deadline or worker.process.poll() is not None:
                raise AssertionError(f"the worker made no progress:\n{worker.log()}")
            time.sleep(0.02)
        time.sleep(0.05 * round_)  # land at a different point of a chunk each round
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
    assert "telemetry.tasks.fold_telemetry" in worker.log()
    return buffered() > 0


@pytest.mark.parametrize("mode", BUFFER_MODES)
def test_fold__worker_killed_mid_fold__totals_exact(mode: str, tmp_path: Path) -> None:
    base = base_hour()
    with _stack(mode, tmp_path) as (env, buffered):
        _driver(env, "setup")
        assert _driver(env, "fill", str(BATCHES), base.isoformat()) == sum(
            len(batch(i, base)[1]) for i in range(BATCHES)
        )
        assert buffered() == BATCHES

        kills = 0
        for round_ in range(KILL_ROUNDS):
            if not _kill_while_folding(env, buffered, tmp_path, round_):
                break
            kills += 1
        left = buffered()
        _driver(env, "fold")
        totals = _driver(env, "totals")

    assert kills >= 1, "the worker was never killed while folding"
    assert 0 < left < BATCHES
    assert totals == pytest.approx(_expected(base), rel=0, abs=1e-9)
