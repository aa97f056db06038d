"""Readiness checks of each dependency: database, cache, broker, beat.

Each check is bounded in time (short connect timeouts) so /readyz answers quickly even when
a dependency is away, and reports a reason a person can act on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from ops.models import TaskHeartbeat
from ops.outage import Outage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    required: bool
    reason: str
    latency_ms: float


def _redis_location(url: str) -> str:
    parts = urlsplit(url)
    return f"Redis at {parts.hostname or 'localhost'}:{parts.port or 6379}"


def check_database() -> str:
    """Run a trivial query on the default database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return f"{connection.vendor} reachable"


def check_cache() -> str:
    """Write and read back a short-lived key."""
    backend = "Redis" if settings.REDIS_URL else "local memory"
    try:
        token = f"{os.getpid()}:{time.monotonic_ns()}"
        cache.set("edgeflags:readyz", token, timeout=10)
        if cache.get("edgeflags:readyz") != token:
            raise RuntimeError("a value written to the cache could not be read back")
    except Exception as exc:
        where = _redis_location(settings.REDIS_URL) if settings.REDIS_URL else backend
        raise RuntimeError(f"{where}: {exc}") from exc
    return f"{backend} reachable"


def check_broker() -> str:
    """Reach the Celery broker and report how many tasks wait in the default queue."""
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    if settings.REDIS_URL:
        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1
        )
        try:
            waiting = client.llen(queue)
        except redis.RedisError as exc:
            raise RuntimeError(f"{_redis_location(settings.CELERY_BROKER_URL)}: {exc}") from exc
        finally:
            client.close()
        return f"Redis broker reachable, {waiting} task(s) waiting"
    folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
    assert isinstance(folder, str)
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise RuntimeError(f"filesystem broker folder {folder} is missing or not writable")
    waiting = sum(1 for name in os.listdir(folder) if name.endswith(".msg"))
    return f"filesystem broker writable, {waiting} task(s) waiting"


def check_beat() -> str:
    """Beat is alive when housekeeping (which beat schedules) ran recently."""
    heartbeat = TaskHeartbeat.objects.filter(name="housekeeping").first()
    if heartbeat is None:
        raise RuntimeError("housekeeping has never run: is `celery beat` (and a worker) running?")
    age = timezone.now() - heartbeat.last_finished_at
    limit = timedelta(seconds=settings.EDGEFLAGS_BEAT_STALE_AFTER_S)
    if age > limit:
        raise RuntimeError(
            f"housekeeping last ran {int(age.total_seconds())} s ago "
            f"(more than {int(limit.total_seconds())} s): is `celery beat` running?"
        )
    return f"housekeeping ran {int(age.total_seconds())} s ago"


# name, check, required: a failing required check makes the process not ready (503).
# Beat is reported but not required: web keeps serving decisions while beat is down.
CHECKS: tuple[tuple[str, Callable[[], str], bool], ...] = (
    ("database", check_database, True),
    ("cache", check_cache, True),
    ("broker", check_broker, True),
    ("beat", check_beat, False),
)


# Checks other apps hand in (ops imports no app): e.g. rollout's `snapshot`, which names each
# environment whose latest publish failed.
_registered: dict[str, tuple[Callable[[], str], bool]] = {}


def register_check(name: str, check: Callable[[], str], *, required: bool) -> None:
    """Add a readiness check: `check` returns a reason when fine and raises when not."""
    _registered[name] = (check, required)


# One per check: a load balancer asks /readyz every few seconds, so each change of state is
# logged once (WARNING when a check starts failing, INFO when it passes again), not each call.
_outages: dict[str, Outage] = {}


def _outage(name: str, required: bool) -> Outage:
    if name not in _outages:
        kind = "required" if required else "optional"
        _outages[name] = Outage(logger, f"readiness check {name!r} ({kind})")
    return _outages[name]


def run_checks() -> list[CheckResult]:
    """Run every readiness check; a failing check never raises (it is logged once)."""
    results = []
    registered = tuple((name, check, required) for name, (check, required) in _registered.items())
    for name, check, required in (*CHECKS, *registered):
        started = time.perf_counter()
        try:
            reason, ok = check(), True
        except Exception as exc:  # noqa: BLE001 - any failure is a reported, not raised, result
            reason, ok = str(exc) or exc.__class__.__name__, False
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        if ok:
            _outage(name, required).recovered()
        else:
            _outage(name, required).failed(reason)
        results.append(CheckResult(name, ok, required, reason, latency_ms))
    return results
