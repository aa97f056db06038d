"""The segmentation job: sample, fit, match identities, label, measure drift, publish.

A run publishes atomically at its end; a run that fails or is killed publishes nothing and
is recorded as failed. Runs never overlap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from capability_probe.models import ClientProfile
from segments import selectors
from segments.ml.drift import adjusted_rand, share_psi
from segments.ml.histograms import feature_histograms, psi_against
from segments.ml.segmentation import ModelArtifact, fit_segmentation
from segments.models import CapabilitySegment, SegmentationLock, SegmentationModel, SegmentationRun
from segments.signals import segmentation_published

logger = logging.getLogger(__name__)

SAVE_DATA_SEGMENT = "save-data"
ARI_SAMPLE = 10_000
SQLITE_CHUNK = 900  # SQLite caps the number of parameters per statement


class SegmentationBusy(RuntimeError):
    """Another run is in progress."""


def _start_run(*, trigger: str, seed: int) -> SegmentationRun:
    stale_before = timezone.now() - timedelta(seconds=settings.EDGEFLAGS_SEGMENTATION_STALE_S)
    with transaction.atomic():
        SegmentationLock.objects.get_or_create(name="segmentation")
        SegmentationLock.objects.select_for_update().get(name="segmentation")
        SegmentationRun.objects.filter(
            status=SegmentationRun.Status.RUNNING, heartbeat_at__lt=stale_before
        ).update(
            status=SegmentationRun.Status.FAILED,
            finished_at=timezone.now(),
            error="no heartbeat: the run was killed or its worker died",
        )
        running = SegmentationRun.objects.filter(status=SegmentationRun.Status.RUNNING).first()
        if running is not None:
            raise SegmentationBusy(f"segmentation run {running.pk} is still running")
        return SegmentationRun.objects.create(trigger=trigger, seed=seed)


def _heartbeat(run: SegmentationRun, **fields: Any) -> None:
    SegmentationRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now(), **fields)


def _write_assignments(ids: np.ndarray, keys: np.ndarray) -> None:
    """Set every profile's segment key; rows whose key did not change are not rewritten."""
    table = ClientProfile._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY into a temporary table, then one joined UPDATE: a re-run with stable
            # identities rewrites only the clients that moved.
            cursor.execute(
                "CREATE TEMPORARY TABLE segment_assignment (id bigint, key text) ON COMMIT DROP"
            )
            with cursor.cursor.copy("COPY segment_assignment (id, key) FROM STDIN") as copy:
                for profile_id, key in zip(ids.tolist(), keys.tolist(), strict=True):
                    copy.write_row((profile_id, key))
            cursor.execute(
                f"UPDATE {table} AS p SET segment_key = a.key FROM segment_assignment AS a "  # noqa: S608
                "WHERE p.id = a.id AND p.segment_key IS DISTINCT FROM a.key"
            )
            cursor.execute("DROP TABLE segment_assignment")
            return
        for key in np.unique(keys):
            members = ids[keys == key]
            for start in range(0, len(members), SQLITE_CHUNK):
                part = [int(i) for i in members[start : start + SQLITE_CHUNK]]
                marks = ",".join(["%s"] * len(part))
                cursor.execute(
                    f"UPDATE {table} SET segment_key = %s WHERE id IN ({marks}) "  # noqa: S608
                    "AND segment_key <> %s",
                    [str(key), *part, str(key)],
                )


def _previous() -> tuple[ModelArtifact | None, SegmentationRun | None]:
    current = selectors.model_current()
    if current is None:
        return None, None
    return ModelArtifact.from_json(current.artifact), current.run


def _drift(
    previous: ModelArtifact | None,
    previous_run: SegmentationRun | None,
    artifact: ModelArtifact,
    columns: dict[str, np.ndarray],
    shares: dict[str, float],
) -> dict[str, Any]:
    if previous is None or previous_run is None:
        return {}
    old_shares = {
        k: v / max(1, sum(previous_run.sizes.values())) for k, v in previous_run.sizes.items()
    }
    sample = {name: values[:ARI_SAMPLE] for name, values in columns.items()}
    feature_psi = psi_against(previous_run.feature_bins, columns, previous.spec)
    return {
        "share_psi": share_psi(old_shares, shares),
        "feature_psi": feature_psi,
        "max_feature_psi": max(feature_psi.values(), default=0.0),
        "ari": adjusted_rand(previous, artifact, sample),
        "previous_run": previous_run.pk,
    }


def segmentation_run(
    *, trigger: str, seed: int = 0, progress: Callable[[str], None] | None = None
) -> SegmentationRun:
    """Run the whole job in the foreground; raises SegmentationBusy when one is running."""
    run = _start_run(trigger=trigger, seed=seed)
    say = progress or (lambda message: logger.info("segmentation run %s: %s", run.pk, message))
    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        ids, columns = selectors.profile_columns()
        timings["read"] = round(time.perf_counter() - started, 3)
        if len(ids) < settings.EDGEFLAGS_SEGMENTATION_MIN_PROFILES:
            raise ValueError(
                f"only {len(ids)} profiles; at least "
                f"{settings.EDGEFLAGS_SEGMENTATION_MIN_PROFILES} are needed to segment"
            )
        say(f"read {len(ids)} profiles in {timings['read']} s")
        _heartbeat(run, rows=len(ids))
        previous, previous_run = _previous()
        next_identity = (CapabilitySegment.objects.aggregate(m=Max("identity"))["m"] or 0) + 1
        result = fit_segmentation(
            columns,
            previous=previous,
            seed=seed,
            fit_sample=settings.EDGEFLAGS_SEGMENTATION_FIT_SAMPLE,
            next_identity=next_identity,
            # Keys are unique across every segment ever made, retired ones included.
            reserved_keys=tuple(CapabilitySegment.objects.values_list("key", flat=True)),
        )
        timings.update({f"fit.{k}": round(v, 3) for k, v in result.timings.items()})
        say(f"fitted k={result.k}, silhouette {result.silhouette:.3f}")
        _heartbeat(run)
        artifact = result.artifact
        key_of = dict(zip(artifact.identities, artifact.keys, strict=True))
        keys = np.array([key_of[int(i)] for i in result.assignments], dtype=object)
        save_data = np.nan_to_num(columns["saveData"], nan=0.0) > 0.5
        keys[save_data] = SAVE_DATA_SEGMENT
        sizes = {key: int((keys == key).sum()) for key in artifact.keys}
        total = max(1, sum(sizes.values()))
        shares = {key: size / total for key, size in sizes.items()}
        drift = _drift(previous, previous_run, artifact, columns, shares)
        bins = feature_histograms(columns, artifact.spec)
        tick = time.perf_counter()
        with transaction.atomic():
            _write_assignments(ids, keys)
            timings["write"] = round(time.perf_counter() - tick, 3)
            version = _publish(run, result, artifact, sizes, shares)
            SegmentationRun.objects.filter(pk=run.pk).update(
                status=SegmentationRun.Status.SUCCEEDED,
                finished_at=timezone.now(),
                heartbeat_at=timezone.now(),
                sampled=min(len(ids), settings.EDGEFLAGS_SEGMENTATION_FIT_SAMPLE),
                k=result.k,
                silhouette=result.silhouette,
                calinski_harabasz=result.calinski_harabasz,
                stability=result.stability,
                sizes=sizes,
                centroids={
                    key_of[identity]: profile
                    for identity, profile in result.centroid_profiles.items()
                },
                drift=drift,
                feature_bins=bins,
                timings={**timings, "total": round(time.perf_counter() - started, 3)},
                model_version=version,
            )
            transaction.on_commit(lambda: segmentation_published.send(None, version=version))
        say(f"published model v{version} in {time.perf_counter() - started:.1f} s")
    except Exception as exc:
        SegmentationRun.objects.filter(pk=run.pk).update(
            status=SegmentationRun.Status.FAILED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}",
            timings=timings,
        )
        raise
    run.refresh_from_db()
    return run


def _publish(
    run: SegmentationRun,
    result: Any,
    artifact: ModelArtifact,
    sizes: dict[str, int],
    shares: dict[str, float],
) -> int:
    version = (SegmentationModel.objects.aggregate(m=Max("version"))["m"] or 0) + 1
    SegmentationModel.objects.filter(is_current=True).update(is_current=False)
    SegmentationModel.objects.create(
        version=version, artifact=artifact.to_json(), run=run, is_current=True
    )
    new = set(result.new_identities)
    for identity, key, label in zip(
        artifact.identities, artifact.keys, artifact.labels, strict=True
    ):
        segment = CapabilitySegment.objects.filter(identity=identity).first()
        if segment is None:
            segment = CapabilitySegment(
                identity=identity,
                key=key,
                first_run=run,
                status=(
                    CapabilitySegment.Status.REVIEW
                    if new and SegmentationModel.objects.count() > 1
                    else CapabilitySegment.Status.ACTIVE
                ),
            )
        elif segment.status == CapabilitySegment.Status.RETIRED:
            segment.status = CapabilitySegment.Status.ACTIVE
        segment.label = label
        segment.size = sizes.get(key, 0)
        segment.share = round(shares.get(key, 0.0), 6)
        segment.centroid = result.centroid_profiles.get(identity, {})
        segment.last_run = run
        segment.save()
    CapabilitySegment.objects.exclude(identity__in=artifact.identities).update(
        status=CapabilitySegment.Status.RETIRED, size=0, share=0.0
    )
    return version
