"""The segmentation job (sample, fit, match identities, label, measure drift, publish) and
a person's review of its segments (accept, rename, merge).

A run publishes atomically at its end; a run that fails or is killed publishes nothing and
is recorded as failed. Runs never overlap. A run carries the keys people gave segments and
keeps merged segments merged: their clients are labelled with the merge target's key.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from capability_probe.models import ClientProfile
from capability_probe.vocabulary import SAVE_DATA, SAVE_DATA_IDENTITY, SAVE_DATA_SEGMENT
from ops import metrics
from ops.errors import DomainError
from segments import selectors
from segments.ml.drift import adjusted_rand, share_psi
from segments.ml.histograms import feature_histograms, psi_against
from segments.ml.segmentation import ModelArtifact, fit_segmentation
from segments.models import CapabilitySegment, SegmentationLock, SegmentationModel, SegmentationRun
from segments.signals import segmentation_published

logger = logging.getLogger(__name__)

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


def _write_assignments(ids: np.ndarray, identities: np.ndarray) -> None:
    """Set every profile's segment identity; rows whose segment did not change are not
    rewritten."""
    table = ClientProfile._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY into a temporary table, then one joined UPDATE: a re-run with stable
            # identities rewrites only the clients that moved.
            cursor.execute(
                "CREATE TEMPORARY TABLE segment_assignment (id bigint, identity integer) "
                "ON COMMIT DROP"
            )
            with cursor.cursor.copy("COPY segment_assignment (id, identity) FROM STDIN") as copy:
                for row in zip(ids.tolist(), identities.tolist(), strict=True):
                    copy.write_row(row)
            cursor.execute(
                f"UPDATE {table} AS p SET segment_identity = a.identity "  # noqa: S608
                "FROM segment_assignment AS a "
                "WHERE p.id = a.id AND p.segment_identity IS DISTINCT FROM a.identity"
            )
            cursor.execute("DROP TABLE segment_assignment")
            return
        for identity in np.unique(identities).tolist():
            members = ids[identities == identity]
            for start in range(0, len(members), SQLITE_CHUNK):
                part = [int(i) for i in members[start : start + SQLITE_CHUNK]]
                marks = ",".join(["%s"] * len(part))
                cursor.execute(
                    f"UPDATE {table} SET segment_identity = %s WHERE id IN ({marks}) "  # noqa: S608
                    "AND segment_identity IS NOT %s",
                    [identity, *part, identity],
                )


def _previous() -> tuple[ModelArtifact | None, SegmentationRun | None]:
    current = selectors.model_current()
    if current is None:
        return None, None
    previous = ModelArtifact.from_json(current.artifact)
    # A segment renamed since the model was published keeps its new key in this run.
    own = dict(CapabilitySegment.objects.values_list("identity", "key"))
    keys = [own.get(i, key) for i, key in zip(previous.identities, previous.keys, strict=True)]
    return dataclasses.replace(previous, keys=keys), current.run


def _served(key_of: dict[int, str]) -> dict[int, tuple[int, str]]:
    """identity -> the segment (identity, key) its clients get: a merged segment's clients
    get its target's."""
    merged = {
        identity: (target, key)
        for identity, target, key in CapabilitySegment.objects.filter(
            merged_into__isnull=False
        ).values_list("identity", "merged_into__identity", "merged_into__key")
    }
    return {identity: merged.get(identity, (identity, key)) for identity, key in key_of.items()}


def _assigned(
    assignments: np.ndarray, key_of: dict[int, str], save_data: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each profile's served segment as (identities, keys): the model's assignment, a merged
    segment's target, or the save-data segment by rule."""
    served = _served(key_of)
    pairs = [served[int(i)] for i in assignments]
    identities = np.array([identity for identity, _ in pairs], dtype=np.int64)
    keys = np.array([key for _, key in pairs], dtype=object)
    identities[save_data] = SAVE_DATA_IDENTITY
    keys[save_data] = SAVE_DATA_SEGMENT
    return identities, keys


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
        # Every environment's profiles (and unscoped synthetic ones) together: a device's
        # capability does not depend on the environment it talks to, and every environment's
        # snapshot serves the one model. Only serving a profile to a key is per environment.
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
        save_data = np.nan_to_num(columns[SAVE_DATA.wire], nan=0.0) > 0.5
        identities, keys = _assigned(result.assignments, key_of, save_data)
        sizes = {key: int((keys == key).sum()) for key in artifact.keys}
        total = max(1, sum(sizes.values()))
        shares = {key: size / total for key, size in sizes.items()}
        drift = _drift(previous, previous_run, artifact, columns, shares)
        bins = feature_histograms(columns, artifact.spec)
        tick = time.perf_counter()
        with transaction.atomic():
            _write_assignments(ids, identities)
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
        metrics.segmentation_duration.labels("succeeded").observe(time.perf_counter() - started)
    except Exception as exc:
        metrics.segmentation_duration.labels("failed").observe(time.perf_counter() - started)
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
        elif segment.status == CapabilitySegment.Status.RETIRED and segment.merged_into_id is None:
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


# Review of segments by a person: accept, rename, merge. Rollout rows and the audit log
# belong to the rollout app, which calls these inside its own transaction.

KEY_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
KEY_MAX_LENGTH = 63  # what rollout rows and audit entries hold
LABEL_MAX_LENGTH = 100


class SegmentError(DomainError):
    """A review action that cannot be carried out; `field` names the input at fault."""


@dataclass(frozen=True)
class SegmentChange:
    """What a review action did: the segment after it, its state before and after."""

    segment: CapabilitySegment
    before: dict[str, Any]
    after: dict[str, Any]
    profiles_moved: int = 0  # merge: stored profiles that now belong to the target


def segment_reach_record(reach: dict[int, dict[str, Any]], *, sampled: int) -> int:
    """Store what each segment's clients can run (rollout/engine/reach.py, keyed by segment
    identity, out of `sampled` clients in all); a segment absent from `reach` had no client
    in the sample and gets none. Returns how many segments have a reach. Derived data, like
    sizes: no audit entry."""
    at = timezone.now().isoformat()
    segments = list(CapabilitySegment.objects.all())
    for segment in segments:
        counted = reach.get(segment.identity)
        segment.reach = {**counted, "sampled": sampled, "at": at} if counted else {}
    CapabilitySegment.objects.bulk_update(segments, ["reach"])
    return sum(1 for segment in segments if segment.reach)


def _state(segment: CapabilitySegment, merged_into: str | None = None) -> dict[str, Any]:
    return {
        "key": segment.key,
        "label": segment.label,
        "status": segment.status,
        "mergedInto": merged_into,
    }


def _locked(key: str, field: str = "segment") -> CapabilitySegment:
    segment = (
        CapabilitySegment.objects.select_for_update(of=("self",))
        .select_related("merged_into")
        .filter(key=key)
        .first()
    )
    if segment is None:
        raise SegmentError(field, f"unknown segment {key!r}")
    return segment


def _merged_key(segment: CapabilitySegment) -> str | None:
    return segment.merged_into.key if segment.merged_into is not None else None


def _move_profiles(segment: CapabilitySegment, target: CapabilitySegment) -> int:
    return ClientProfile.objects.filter(segment_identity=segment.identity).update(
        segment_identity=target.identity
    )


@transaction.atomic
def segment_accept(*, key: str) -> SegmentChange:
    """Accept a segment flagged for review: it becomes active as it is."""
    segment = _locked(key)
    if segment.status != CapabilitySegment.Status.REVIEW:
        raise SegmentError("segment", f"{key!r} is {segment.status}, not waiting for review")
    before = _state(segment)
    segment.status = CapabilitySegment.Status.ACTIVE
    segment.save(update_fields=["status", "updated_at"])
    return SegmentChange(segment, before, _state(segment))


def _clean_key(new_key: str, segment: CapabilitySegment) -> str:
    new_key = new_key.strip()
    if len(new_key) > KEY_MAX_LENGTH:
        raise SegmentError("key", f"at most {KEY_MAX_LENGTH} characters")
    if not KEY_PATTERN.fullmatch(new_key):
        raise SegmentError(
            "key", "must be a slug: lowercase letters and digits, words joined by single hyphens"
        )
    if new_key == SAVE_DATA_SEGMENT:
        raise SegmentError("key", f"{SAVE_DATA_SEGMENT!r} is reserved for the save-data rule")
    if CapabilitySegment.objects.exclude(pk=segment.pk).filter(key=new_key).exists():
        raise SegmentError("key", f"{new_key!r} is taken by another segment")
    return new_key


def _clean_label(new_label: str) -> str:
    new_label = new_label.strip()
    if len(new_label) > LABEL_MAX_LENGTH:
        raise SegmentError("label", f"at most {LABEL_MAX_LENGTH} characters")
    return new_label


@transaction.atomic
def segment_rename(*, key: str, new_key: str = "", new_label: str = "") -> SegmentChange:
    """Give a segment a new key and/or label. Empty means "keep"; keys stay unique slugs.

    Everything that hangs off the segment (stored profiles, rollout rows and plans, guardrail
    evidence) refers to its identity and stays; rules that spell the old key in their
    constraints are the caller's to report.
    """
    segment = _locked(key)
    key_wanted = _clean_key(new_key, segment) if new_key.strip() else segment.key
    label_wanted = _clean_label(new_label) or segment.label
    if (key_wanted, label_wanted) == (segment.key, segment.label):
        raise SegmentError("key", "give a new key or a new label (both are unchanged)")
    before = _state(segment, _merged_key(segment))
    segment.key, segment.label = key_wanted, label_wanted
    try:
        with transaction.atomic():
            segment.save(update_fields=["key", "label", "updated_at"])
    except IntegrityError as exc:  # another request took the key since the check above
        raise SegmentError("key", f"{key_wanted!r} is taken by another segment") from exc
    return SegmentChange(segment, before, _state(segment, _merged_key(segment)))


@transaction.atomic
def segment_merge(*, key: str, into: str) -> SegmentChange:
    """Merge a segment into another: it retires, and its clients get the target's key.

    A merge target is never itself merged: segments already merged into the one merged
    here move on to the new target.
    """
    segment = _locked(key)
    if segment.merged_into is not None:
        raise SegmentError("segment", f"{key!r} is already merged into {segment.merged_into.key!r}")
    if into == key:
        raise SegmentError("into", "cannot merge a segment into itself")
    target = _locked(into, field="into")
    if target.merged_into is not None:
        raise SegmentError(
            "into",
            f"{into!r} is itself merged into {target.merged_into.key!r}; merge into that one",
        )
    if target.status == CapabilitySegment.Status.RETIRED:
        raise SegmentError("into", f"{into!r} is retired: its clients are in other segments now")
    before = _state(segment)
    CapabilitySegment.objects.filter(merged_into=segment).update(merged_into=target)
    target.size += segment.size
    target.share = round(target.share + segment.share, 6)
    target.save(update_fields=["size", "share", "updated_at"])
    segment.merged_into = target
    segment.status = CapabilitySegment.Status.RETIRED
    segment.size, segment.share = 0, 0.0
    segment.save(update_fields=["merged_into", "status", "size", "share", "updated_at"])
    moved = _move_profiles(segment, target)
    return SegmentChange(segment, before, _state(segment, into), moved)
