"""Prometheus metrics of every Edgeflags process, added up at scrape time.

prometheus-client's multiprocess mode: each process (granian worker, Celery worker and pool
process, beat) writes its samples to memory-mapped files in settings.METRICS_DIR, and
`render()` reads them all. Per-process gauges use a `live…` mode, so a process that exited
stops being reported once the scrape notices it is gone.

Labels only take values from small fixed sets (route patterns, methods, status codes,
environment keys, reasons): never a path, a client id or anything else a client chooses, which
would grow the series without bound and put identities in the monitoring system.

Every metric is listed, with three alert rules to start with, in the README ("Metrics").
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

# Settings set PROMETHEUS_MULTIPROC_DIR; should prometheus_client have been imported before
# settings were (by some library), its value class was chosen without it: choose again, before
# the first metric below is made.
values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]

# The classic text format every Prometheus (2.x included) parses; the format generate_latest
# writes, and what prometheus-client itself answers a scraper that asks for nothing newer.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# From the evaluate budget (p99 of a few ms) up to a request that is plainly broken.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Background jobs: a fold runs for up to a few seconds, a segmentation up to an hour.
_JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# --- the API -----------------------------------------------------------------------------------
http_requests = Counter(
    "edgeflags_http_requests",
    "Requests by route pattern (never the path), method and status; other pages as (other)",
    ["route", "method", "status"],
)
http_request_duration = Histogram(
    "edgeflags_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by route pattern",
    ["route"],
    buckets=_LATENCY_BUCKETS,
)
rate_limited = Counter(
    "edgeflags_rate_limited",
    "Client API requests refused with 429, by the limit they exceeded "
    "(client, address, key, unknown_keys)",
    ["reason"],
)
events = Counter(
    "edgeflags_events",
    "Telemetry events by outcome: accepted (new), duplicate, uncounted (kept out of the "
    "guardrails), refused (503: the buffer was unavailable)",
    ["outcome"],
)

# --- snapshots ---------------------------------------------------------------------------------
snapshot_version = Gauge(
    "edgeflags_snapshot_version",
    "The snapshot version a process serves, per environment",
    ["environment"],
    multiprocess_mode="liveall",
)
snapshot_published = Gauge(
    "edgeflags_snapshot_published_timestamp_seconds",
    "When the version a process serves was published, per environment",
    ["environment"],
    multiprocess_mode="liveall",
)
snapshot_checked = Gauge(
    "edgeflags_snapshot_checked_timestamp_seconds",
    "When a process last checked, successfully, that it serves the latest versions",
    multiprocess_mode="liveall",
)
publish_failures = Counter(
    "edgeflags_snapshot_publish_failures",
    "Changes not published, per environment: unpublishable (the whole snapshot kept back), "
    "kept_back (one part kept back), settle_error (after commit)",
    ["environment", "kind"],
)

# --- the change stream (api/stream) -------------------------------------------------------------
stream_connections = Gauge(
    "edgeflags_stream_connections",
    "Open change-stream connections, by stream (flags, snapshot)",
    ["stream"],
    multiprocess_mode="livesum",
)
stream_capacity = Gauge(
    "edgeflags_stream_capacity",
    "Connections the stream processes accept in all (EDGEFLAGS_STREAM_MAX_CONNECTIONS each)",
    multiprocess_mode="livesum",
)
stream_refused = Counter(
    "edgeflags_stream_refused",
    "Stream connections refused, by reason (capacity, address, unauthorized, forbidden, "
    "unavailable, bad_request)",
    ["reason"],
)
stream_events = Counter(
    "edgeflags_stream_events",
    "Change events written to stream connections, by stream",
    ["stream"],
)
stream_change_lag = Histogram(
    "edgeflags_stream_change_lag_seconds",
    "From a change's publish to a stream process waking its listeners",
    buckets=_LATENCY_BUCKETS,
)

# --- telemetry ---------------------------------------------------------------------------------
fold_duration = Histogram(
    "edgeflags_telemetry_fold_duration_seconds",
    "Time one telemetry fold took",
    buckets=_JOB_BUCKETS,
)
folded_batches = Counter(
    "edgeflags_telemetry_folded_batches", "Event batches folded into the guardrail aggregates"
)
fold_lag = Gauge(
    "edgeflags_telemetry_fold_lag_seconds",
    "At the last fold: how long the oldest batch it folded had waited in the buffer",
    multiprocess_mode="mostrecent",
)
fold_succeeded = Gauge(
    "edgeflags_telemetry_fold_success_timestamp_seconds",
    "When a fold last ran to its end",
    multiprocess_mode="mostrecent",
)
buffered_batches = Gauge(
    "edgeflags_telemetry_buffered_batches",
    "Event batches waiting in the buffer at the end of the last fold",
    multiprocess_mode="mostrecent",
)
quarantined_batches = Counter(
    "edgeflags_telemetry_quarantined_batches",
    "Event batches the fold could not apply and set aside, by buffer (redis, database)",
    ["source"],
)

# --- the controller and segmentation -----------------------------------------------------------
controller_decisions = Counter(
    "edgeflags_controller_decisions",
    "What the rollout controller did with each segment it checked: the transition it made "
    "(advance, hold, rollback, resume) or continue (collecting evidence)",
    ["action"],
)
segmentation_duration = Histogram(
    "edgeflags_segmentation_run_duration_seconds",
    "Time a segmentation run took, by outcome (succeeded, failed)",
    ["outcome"],
    buckets=_JOB_BUCKETS,
)


def method_label(method: str | None) -> str:
    """The request method, or "other": a client may send any token as its method."""
    return method if method in _METHODS else "other"


_GAUGE_FILE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")


def _forget_exited_processes(directory: Path) -> None:
    """Drop the live gauges of processes that exited (their pid is no process of this host)."""
    for path in directory.glob("gauge_live*_*.db"):
        match = _GAUGE_FILE.match(path.name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # a process of another user is alive


def render() -> bytes:
    """Every process' samples, added up, in the Prometheus text format."""
    directory = Path(settings.METRICS_DIR)
    _forget_exited_processes(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry)
