"""The drift controller: every watched (segment, model version) tested against its own
reference window, and a retraining request filed on a sustained decay.

What is watched comes from the aggregates: every (environment, flag, segment, model version)
with on-device quality data in the last two epochs gets a DriftWatch. The reference window
is the first EDGEFLAGS_DRIFT_REFERENCE_HOURS of the version's data in the segment (longer when
too few clients reported); then each run sums the current epoch and hands both to
`rollout.guardrails.drift.drift_verdict`, the function the simulation drives. A fired verdict
files a request through rollout.retraining and leaves the watch triggered until the request
is resolved (which starts a new epoch). Nothing here changes what clients are served.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Sum
from django.utils import timezone

from ops.services import heartbeat_record
from rollout.audit import Actor
from rollout.guardrails.drift import (
    DRIFT_METRICS,
    STALE_TREND_INTERVALS,
    DriftPolicy,
    drift_verdict,
)
from rollout.guardrails.statistics import Arm
from rollout.models import DriftWatch, Environment, Flag, MetricBucket
from rollout.retraining import retrain_request_file
from rollout.selectors import segment_keys

logger = logging.getLogger(__name__)

DRIFT = Actor("drift controller")
SUMS = tuple(f"{metric}_{part}" for metric in DRIFT_METRICS for part in ("n", "sum", "sumsq"))


@dataclass
class DriftReport:
    watched: int = 0
    filed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.watched} watched, {len(self.filed)} retraining request(s) filed" + (
            f": {'; '.join(self.filed)}" if self.filed else ""
        )


def policy_for(flag: Flag | None) -> DriftPolicy:
    return DriftPolicy(
        reference_hours=settings.EDGEFLAGS_DRIFT_REFERENCE_HOURS,
        min_clients=settings.EDGEFLAGS_DRIFT_MIN_CLIENTS,
        alpha=settings.EDGEFLAGS_DRIFT_ALPHA,
        epoch_hours=settings.EDGEFLAGS_DRIFT_EPOCH_HOURS,
        freshness_limit_hours=flag.freshness_limit_hours if flag is not None else None,
    )


def _buckets(watch: DriftWatch, start: datetime, end: datetime) -> Any:
    return MetricBucket.objects.filter(
        environment_id=watch.environment_id,
        flag=watch.flag,
        segment_identity=watch.segment_identity,
        model_version=watch.model_version,
        minute__gte=start,
        minute__lt=end,
    )


def window_sums(watch: DriftWatch, start: datetime, end: datetime) -> dict[str, Arm]:
    """Each metric's client observations in [start, end), summed in the database."""
    totals = _buckets(watch, start, end).aggregate(**{name: Sum(name) for name in SUMS})
    return {
        metric: Arm(
            int(totals[f"{metric}_n"] or 0),
            float(totals[f"{metric}_sum"] or 0.0),
            float(totals[f"{metric}_sumsq"] or 0.0),
        )
        for metric in DRIFT_METRICS
    }


def recent_freshness(watch: DriftWatch, now: datetime) -> tuple[Arm, ...]:
    """Freshness sums of the last STALE_TREND_INTERVALS controller intervals, oldest first."""
    interval = timedelta(seconds=settings.EDGEFLAGS_DRIFT_INTERVAL_S)
    start = now - interval * STALE_TREND_INTERVALS
    # One query for the whole span (a few hundred minute rows), summed per interval here.
    sums = [[0, 0.0, 0.0] for _ in range(STALE_TREND_INTERVALS)]
    rows = _buckets(watch, start, now).values_list(
        "minute", "freshness_n", "freshness_sum", "freshness_sumsq"
    )
    for minute, n, total, squares in rows:
        into = sums[int((minute - start) / interval)]
        into[0] += n
        into[1] += total
        into[2] += squares
    return tuple(Arm(int(n), float(total), float(squares)) for n, total, squares in sums)


def _arms_json(arms: dict[str, Arm]) -> dict[str, Any]:
    return {
        m: {"n": a.n, "total": a.total, "totalSquares": a.total_squares} for m, a in arms.items()
    }


def _arms_of(raw: dict[str, Any]) -> dict[str, Arm]:
    return {
        m: Arm(int(v["n"]), float(v["total"]), float(v["totalSquares"])) for m, v in raw.items()
    }


def _watches(now: datetime, policy: DriftPolicy) -> list[DriftWatch]:
    """A watch for every version with quality data lately (created when missing)."""
    since = now - timedelta(hours=2 * policy.epoch_hours + policy.reference_hours)
    seen = (
        MetricBucket.objects.filter(minute__gte=since)
        .exclude(model_version="")
        .values("environment_id", "flag", "segment_identity", "model_version")
        .annotate(first=Min("minute"))
        .order_by()
    )
    watches = []
    for row in seen:
        watch, _ = DriftWatch.objects.get_or_create(
            environment_id=row["environment_id"],
            flag=row["flag"],
            segment_identity=row["segment_identity"],
            model_version=row["model_version"],
            defaults={"reference_start": row["first"]},
        )
        watches.append(watch)
    return watches


def _close_reference(watch: DriftWatch, policy: DriftPolicy, now: datetime) -> bool:
    """Freeze the reference once its hours are over and enough clients reported."""
    end = watch.reference_start + timedelta(hours=policy.reference_hours)
    if now < end:
        return False
    sums = window_sums(watch, watch.reference_start, end)
    if max(a.n for a in sums.values()) < policy.min_clients:
        sums = window_sums(watch, watch.reference_start, now)  # too few: it grows
        end = now
        if max(a.n for a in sums.values()) < policy.min_clients:
            return False
    watch.reference = _arms_json(sums)
    watch.reference_end = end
    watch.epoch_start = end
    watch.status = DriftWatch.Status.WATCHING
    return True


def _evidence(watch: DriftWatch, verdict: Any, segment: str) -> dict[str, Any]:
    return {
        "segment": segment,
        "segmentIdentity": watch.segment_identity,
        "modelVersion": watch.model_version,
        "referenceWindow": [
            watch.reference_start.isoformat(),
            watch.reference_end.isoformat() if watch.reference_end else None,
        ],
        "currentWindowStart": watch.epoch_start.isoformat() if watch.epoch_start else None,
        **verdict.evidence_json(),
    }


def drift_check(
    watch: DriftWatch, policy: DriftPolicy, now: datetime, keys: dict[int, str]
) -> str | None:
    """One watch at `now`; the request's summary when one was filed."""
    if watch.status == DriftWatch.Status.TRIGGERED:
        return None
    if watch.status == DriftWatch.Status.COLLECTING and not _close_reference(watch, policy, now):
        watch.last_checked_at = now
        watch.save()
        return None
    assert watch.epoch_start is not None
    if now - watch.epoch_start >= timedelta(hours=policy.epoch_hours):
        watch.epoch += 1
        watch.epoch_start = now
    current = window_sums(watch, watch.epoch_start, now)
    verdict = drift_verdict(
        policy,
        _arms_of(watch.reference),
        current,
        epoch=watch.epoch,
        recent_freshness=recent_freshness(watch, now),
    )
    watch.last_verdict = verdict.evidence_json()
    watch.last_checked_at = now
    if not verdict.fired:
        watch.save()
        return None
    segment = keys.get(watch.segment_identity, f"segment-{watch.segment_identity}")
    watch.status = DriftWatch.Status.TRIGGERED
    watch.save()
    retrain_request_file(
        environment=Environment.objects.get(pk=watch.environment_id),
        flag=watch.flag,
        segment=watch.segment_identity,
        model_version=watch.model_version,
        metric=verdict.metric,
        reason=f"drift of {watch.model_version} in {segment}: {verdict.reason}",
        evidence=_evidence(watch, verdict, segment),
        actor=DRIFT,
        now=now,
    )
    return f"{watch.flag} {watch.model_version} in {segment} ({verdict.metric})"


def drift_tick(now: datetime | None = None) -> DriftReport:
    """Check every watched version (the periodic task's body)."""
    started = timezone.now()
    now = now or started
    report = DriftReport()
    flags = {flag.key: flag for flag in Flag.objects.all()}
    keys = segment_keys()
    for watch in _watches(now, policy_for(None)):
        report.watched += 1
        with transaction.atomic():
            filed = drift_check(watch, policy_for(flags.get(watch.flag)), now, keys)
        if filed:
            report.filed.append(filed)
    heartbeat_record(
        name="drift controller",
        started_at=started,
        detail={"watched": report.watched, "filed": len(report.filed)},
    )
    return report
