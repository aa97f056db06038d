"""Fold the buffer into MetricBucket rows exactly once, and purge the intake bookkeeping.

Redis buffer: the head entries are read without popping; in one transaction the cursor row
is locked, entries at or below its position are skipped, the rest applied and the position
advanced; only after the commit are the folded entries trimmed from the list. A fold that
dies before its commit changes nothing; one that dies after it skips those entries next time.
Database buffer: a chunk of TelemetryBatch rows is applied and deleted in one transaction.

A chunk the database refuses is applied again batch by batch, each under its own savepoint;
a batch that still fails (or is not a batch at all) moves to QuarantinedBatch in the same
transaction that advances the cursor, and the fold goes on: one bad batch never stalls the
ones behind it. `quarantined_replay` applies a quarantined batch again once its cause is
fixed.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from ops import metrics
from rollout.audit import Actor, audit_record
from rollout.models import (
    Environment,
    FailureMark,
    MetricBucket,
    QuarantinedBatch,
    SeenEvent,
    SegmentRollout,
    TelemetryBatch,
    TelemetryCursor,
)
from telemetry.buffer import (
    buffered_count,
    redis_cursor_name,
    redis_mode,
    redis_peek,
    redis_trim,
)
from telemetry.fold import BucketKey, Folded, ThresholdKey, fold_batch

logger = logging.getLogger(__name__)

FOLD_BUDGET_S = 50.0
RETENTION = timedelta(hours=48)
# The row a database-buffer fold locks so that folds never run side by side.
DATABASE_CURSOR = "database-buffer"


@dataclass(frozen=True, slots=True)
class FoldOutcome:
    """What one fold run did: batches applied and quarantined, and whether another fold held
    the lock."""

    batches: int
    busy: bool = False
    quarantined: int = 0


@dataclass(frozen=True, slots=True)
class _Step:
    applied: int = 0
    empty: bool = False
    busy: bool = False
    quarantined: int = 0
    oldest_received: float | None = None  # epoch seconds: the oldest batch of the chunk


def _moment(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def latency_thresholds() -> dict[ThresholdKey, float]:
    """Every segment rollout's frozen p95 inference time, by (environment id, flag, segment
    identity)."""
    rows = SegmentRollout.objects.filter(latency_p95_ms__isnull=False).values_list(
        "plan__flag_state__environment_id",
        "plan__flag_state__flag__key",
        "segment_identity",
        "latency_p95_ms",
    )
    return {(env, flag, segment): p95 for env, flag, segment, p95 in rows if p95 is not None}


def bucket_add(key: BucketKey, increments: Mapping[str, float]) -> None:
    """Add `increments` (MetricBucket field -> amount) to a bucket, creating it when missing."""
    if not increments:
        return
    environment_id, flag, segment, arm, rung, model, minute = key
    lookup: dict[str, Any] = {
        "environment_id": environment_id,
        "flag": flag,
        "segment_identity": segment,
        "arm": arm,
        "rung": rung,
        "model_version": model,
        "minute": _moment(minute),
    }
    changes = {name: F(name) + amount for name, amount in increments.items()}
    if MetricBucket.objects.filter(**lookup).update(**changes):
        return
    try:
        with transaction.atomic():
            MetricBucket.objects.create(**lookup, **increments)
    except IntegrityError:
        # Created by a concurrent writer (the exposure flush) since our update found none.
        MetricBucket.objects.filter(**lookup).update(**changes)


def _new_failures(folded: Folded) -> Counter[BucketKey]:
    """Insert the FailureMarks not there yet; count each new one in its bucket."""
    if not folded.failures:
        return Counter()
    candidates = list(folded.failures)
    existing = FailureMark.objects.filter(
        environment_id__in={c[0] for c in candidates},
        flag__in={c[1] for c in candidates},
        client__in={c[2] for c in candidates},
        window__in={_moment(c[3]) for c in candidates},
    ).values_list("environment_id", "flag", "client", "window")
    marked = {(env, flag, client, int(when.timestamp())) for env, flag, client, when in existing}
    new = [c for c in candidates if c not in marked]
    FailureMark.objects.bulk_create(
        FailureMark(environment_id=env, flag=flag, client=client, window=_moment(hour))
        for env, flag, client, hour in new
    )
    return Counter(folded.failures[c] for c in new)


class _Malformed(Exception):
    """A buffered entry that is not a batch the fold can read."""


def _known_environments(batches: list[Any]) -> set[int]:
    environments = {b.get("env") for b in batches if isinstance(b, dict)}
    ids = [env for env in environments if isinstance(env, int) and not isinstance(env, bool)]
    return set(Environment.objects.filter(pk__in=ids).values_list("pk", flat=True))


def _apply(batches: list[Any], thresholds: Mapping[ThresholdKey, float]) -> int:
    """Fold `batches` into the aggregates (inside the caller's transaction); how many counted.

    Raises _Malformed (naming the batch's index) for one the fold cannot read, and
    DatabaseError when the database refuses the result."""
    known = _known_environments(batches)
    folded = Folded()
    applied = 0
    for index, batch in enumerate(batches):
        try:
            if batch["env"] not in known:
                continue  # the environment was deleted since: its telemetry goes with it
            fold_batch(folded, batch, thresholds)
            applied += 1
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _Malformed(index, f"not a readable batch: {exc!r}") from exc
    failures = _new_failures(folded)
    for key, delta in folded.buckets.items():
        increments = delta.increments()
        if failures[key]:
            increments["failures"] = failures[key]
        bucket_add(key, increments)
    return applied


def _locked_cursor(name: str) -> TelemetryCursor | None:
    """The cursor row, locked for this transaction; None while another fold holds it."""
    TelemetryCursor.objects.get_or_create(name=name)
    rows = TelemetryCursor.objects.filter(name=name)
    if connection.features.has_select_for_update_skip_locked:
        return rows.select_for_update(skip_locked=True).first()
    # SQLite has no row locks: its write transactions already run one at a time.
    return rows.first()


def _quarantine(entry: bytes, source: str, error: str) -> None:
    """Set an entry aside (inside the fold's transaction) and say so in the error log."""
    # The error text may quote the refused value; the column must take it.
    message = error.replace("\x00", "\\x00")[:2000]
    QuarantinedBatch.objects.create(
        source=source, entry=entry, error=message, quarantined_at=timezone.now()
    )
    logger.error("telemetry: quarantined a %s batch (%d bytes): %s", source, len(entry), message)
    metrics.quarantined_batches.labels(source).inc()


def _decode(entry: bytes) -> tuple[Any, str | None]:
    try:
        return orjson.loads(entry), None
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON: {exc}"


def _apply_alone(batch: Any, thresholds: Mapping[ThresholdKey, float]) -> tuple[int, str | None]:
    """Apply one batch under its own savepoint: (applied, None), or (0, why it cannot be)."""
    try:
        with transaction.atomic():
            return _apply([batch], thresholds), None
    except _Malformed as exc:
        return 0, str(exc.args[1])
    except DatabaseError as exc:
        return 0, f"the database refused it: {type(exc).__name__}: {exc}"


def _oldest_received(batches: list[Any]) -> float | None:
    """When the oldest of `batches` reached the buffer (epoch seconds), if any says."""
    received = [
        b["received"]
        for b in batches
        if isinstance(b, dict) and isinstance(b.get("received"), (int, float))
    ]
    return min(received, default=None)


def _apply_or_quarantine(
    entries: list[bytes], source: str, thresholds: Mapping[ThresholdKey, float]
) -> tuple[int, int, float | None]:
    """Apply buffered entries (inside the caller's transaction); those that cannot be
    applied are quarantined. (applied, quarantined, when the oldest reached the buffer)."""
    decoded: list[tuple[bytes, Any]] = []
    quarantined = 0
    for entry in entries:
        batch, problem = _decode(entry)
        if problem is None:
            decoded.append((entry, batch))
        else:
            _quarantine(entry, source, problem)
            quarantined += 1
    oldest = _oldest_received([batch for _, batch in decoded])
    try:
        # All together first: the normal case, one pass over the aggregates.
        with transaction.atomic():
            return _apply([batch for _, batch in decoded], thresholds), quarantined, oldest
    except (_Malformed, DatabaseError):
        pass
    applied = 0
    for entry, batch in decoded:
        done, problem = _apply_alone(batch, thresholds)
        applied += done
        if problem is not None:
            _quarantine(entry, source, problem)
            quarantined += 1
    return applied, quarantined, oldest


def _fold_redis_chunk(size: int, thresholds: Mapping[ThresholdKey, float]) -> _Step:
    chunk = redis_peek(size)
    if not chunk.entries:
        return _Step(empty=True)
    with transaction.atomic():
        cursor = _locked_cursor(redis_cursor_name(chunk.epoch))
        if cursor is None:
            return _Step(busy=True)
        fresh = [body for seq, body in chunk.entries if seq > cursor.position]
        applied, quarantined, oldest = _apply_or_quarantine(fresh, "redis", thresholds)
        position = max(cursor.position, *(seq for seq, _ in chunk.entries))
        if position != cursor.position:
            cursor.position = position
            cursor.save(update_fields=["position"])
    # Only now, with the position committed: a crash before this line is harmless.
    redis_trim(chunk.epoch, position)
    return _Step(applied=applied, quarantined=quarantined, oldest_received=oldest)


def _fold_database_chunk(size: int, thresholds: Mapping[ThresholdKey, float]) -> _Step:
    with transaction.atomic():
        if _locked_cursor(DATABASE_CURSOR) is None:
            return _Step(busy=True)
        rows = list(TelemetryBatch.objects.order_by("pk").values_list("pk", "payload")[:size])
        if not rows:
            return _Step(empty=True)
        entries = [orjson.dumps(payload) for _, payload in rows]
        applied, quarantined, oldest = _apply_or_quarantine(entries, "database", thresholds)
        TelemetryBatch.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
    return _Step(applied=applied, quarantined=quarantined, oldest_received=oldest)


def telemetry_fold(*, chunk: int | None = None, budget_s: float = FOLD_BUDGET_S) -> FoldOutcome:
    """Fold buffered batches into MetricBucket, chunk by chunk, until empty or out of time."""
    size = chunk or settings.EDGEFLAGS_TELEMETRY_FOLD_CHUNK
    fold_chunk = _fold_redis_chunk if redis_mode() else _fold_database_chunk
    thresholds = latency_thresholds()
    started = time.monotonic()
    deadline = started + budget_s
    applied = quarantined = 0
    oldest: float | None = None
    while True:
        step = fold_chunk(size, thresholds)
        applied += step.applied
        quarantined += step.quarantined
        if oldest is None:
            oldest = step.oldest_received
        if step.empty or step.busy or time.monotonic() >= deadline:
            break
    if not step.busy:
        _measure_fold(started, applied, oldest)
    if applied:
        logger.info("telemetry: folded %d batches", applied)
    if quarantined:
        waiting = QuarantinedBatch.objects.count()
        logger.error(
            "telemetry: %d batches quarantined by this fold, %d in quarantine", quarantined, waiting
        )
    return FoldOutcome(batches=applied, busy=step.busy, quarantined=quarantined)


def _measure_fold(started: float, applied: int, oldest_received: float | None) -> None:
    metrics.fold_duration.observe(time.monotonic() - started)
    metrics.folded_batches.inc(applied)
    # Nothing folded: nothing was waiting at the start, so no batch waited.
    lag = time.time() - oldest_received if oldest_received is not None else 0.0
    metrics.fold_lag.set(max(0.0, lag))
    metrics.fold_succeeded.set(time.time())
    metrics.buffered_batches.set(buffered_count())


@transaction.atomic
def quarantined_replay(*, quarantined: QuarantinedBatch, actor: Actor) -> bool:
    """Apply a quarantined batch to the aggregates again (once what refused it is fixed):
    True and the row deleted when it applied, else False with its error updated. Audited.

    Superusers only: telemetry evidence decides rollbacks."""
    if actor.user is None or not actor.user.is_superuser:
        raise PermissionDenied("replaying quarantined telemetry needs a superuser")
    batch, problem = _decode(bytes(quarantined.entry))
    applied = 0
    if problem is None:
        applied, problem = _apply_alone(batch, latency_thresholds())
    if problem is None:
        audit_record(
            actor=actor,
            action="telemetry.replay",
            before={"quarantined": quarantined.pk, "error": quarantined.error},
            after={"applied": applied},
            reason="quarantined telemetry batch replayed",
        )
        quarantined.delete()
        return True
    quarantined.error = problem.replace("\x00", "\\x00")[:2000]
    quarantined.attempts += 1
    quarantined.save(update_fields=["error", "attempts"])
    return False


def telemetry_purge(now: datetime) -> dict[str, int]:
    """Forget deduplication ids older than EDGEFLAGS_EVENT_DEDUPE_S, failure marks older
    than 48 hours and aggregates older than EDGEFLAGS_METRIC_RETENTION_DAYS; counts deleted."""
    cutoff = now - RETENTION
    seen_cutoff = now - timedelta(seconds=settings.EDGEFLAGS_EVENT_DEDUPE_S)
    bucket_cutoff = now - timedelta(days=settings.EDGEFLAGS_METRIC_RETENTION_DAYS)
    seen, _ = SeenEvent.objects.filter(seen_at__lt=seen_cutoff).delete()
    marks, _ = FailureMark.objects.filter(window__lt=cutoff).delete()
    buckets, _ = MetricBucket.objects.filter(minute__lt=bucket_cutoff).delete()
    return {"seen_events": seen, "failure_marks": marks, "metric_buckets": buckets}
