"""Reads of the segments app: profiles as numpy columns, the current model and segments."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Case, CharField, OuterRef, QuerySet, Subquery, Value, When

from capability_probe.models import ATTRIBUTE_NAMES, ClientProfile, columns_to_attributes
from capability_probe.vocabulary import (
    NUMBERS,
    POPULATION,
    SAVE_DATA_IDENTITY,
    SAVE_DATA_SEGMENT,
    TEXTS,
    Kind,
)
from segments.models import CapabilitySegment, SegmentationModel, SegmentationRun

# Profile column -> population column name (segments/ml's data contract), by kind: numbers
# and booleans are read as floats (NaN: missing), text as objects (None: missing).
NUMERIC: dict[str, str] = {
    f.column: f.wire for f in POPULATION if f.column is not None and f.kind in NUMBERS
}
BOOLEAN: dict[str, str] = {
    f.column: f.wire for f in POPULATION if f.column is not None and f.kind is Kind.BOOL
}
TEXT: dict[str, str] = {
    f.column: f.wire for f in POPULATION if f.column is not None and f.kind in TEXTS
}
FETCH_BATCH = 50_000


def profile_count() -> int:
    """How many profiles there are."""
    return ClientProfile.objects.count()


def profile_columns(*, limit: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(profile ids, columns) of every profile (or the first `limit` by id), read in batches.

    A raw cursor rather than model instances: a million ORM objects would cost minutes and
    gigabytes; tuples straight into preallocated arrays cost seconds.
    """
    table = ClientProfile._meta.db_table
    names = [*NUMERIC, *BOOLEAN, *TEXT]
    total = profile_count() if limit is None else min(limit, profile_count())
    ids = np.empty(total, dtype=np.int64)
    numeric = {col: np.full(total, np.nan) for col in [*NUMERIC, *BOOLEAN]}
    text = {col: np.empty(total, dtype=object) for col in TEXT}
    sql = f"SELECT id, {', '.join(names)} FROM {table} ORDER BY id"  # noqa: S608 - fixed names
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    position = 0
    with connection.cursor() as cursor:
        cursor.execute(sql)
        while position < total:
            rows = cursor.fetchmany(FETCH_BATCH)
            if not rows:
                break
            block = np.array(rows, dtype=object)
            end = position + len(rows)
            ids[position:end] = block[:, 0].astype(np.int64)
            for index, col in enumerate(names, start=1):
                values = block[:, index]
                if col in text:
                    text[col][position:end] = [v if v else None for v in values]
                else:
                    numeric[col][position:end] = np.array(
                        [np.nan if v is None else float(v) for v in values]
                    )
            position = end
    columns: dict[str, np.ndarray] = {}
    for col, name in {**NUMERIC, **BOOLEAN}.items():
        columns[name] = numeric[col][:position]
    for col, name in TEXT.items():
        columns[name] = text[col][:position]
    return ids[:position], columns


def profile_sample(limit: int) -> list[dict[str, Any]]:
    """At most `limit` profiles as evaluation attributes: the first by keyed hash, which is
    a uniform sample of clients (the hash is an HMAC) and the same one on every read."""
    rows = ClientProfile.objects.order_by("client_hash").values(*ATTRIBUTE_NAMES)[:limit]
    return [columns_to_attributes(row) for row in rows]


def profiles_with_segment_keys(profiles: QuerySet[ClientProfile]) -> QuerySet[ClientProfile]:
    """`profiles` with each one's current segment key as `segment_key` (one subquery; None
    before a model assigned one): the profile holds the segment's identity, people read its
    key."""
    current = CapabilitySegment.objects.filter(identity=OuterRef("segment_identity"))
    key = Case(
        When(segment_identity=SAVE_DATA_IDENTITY, then=Value(SAVE_DATA_SEGMENT)),
        default=Subquery(current.values("key")[:1]),
        output_field=CharField(),
    )
    return profiles.annotate(segment_key=key)


def segment_identity_of(key: str) -> int | None:
    """The identity of the segment whose key is `key` now (save-data's included)."""
    if key == SAVE_DATA_SEGMENT:
        return SAVE_DATA_IDENTITY
    return CapabilitySegment.objects.filter(key=key).values_list("identity", flat=True).first()


def model_current() -> SegmentationModel | None:
    """The published segmentation model, if any."""
    return SegmentationModel.objects.filter(is_current=True).first()


def segment_list() -> list[CapabilitySegment]:
    """Every capability segment, by identity."""
    return list(CapabilitySegment.objects.order_by("identity"))


def share_history_rows(runs: int) -> list[dict[str, Any]]:
    """The latest `runs` succeeded runs' sizes with their models' identities and keys,
    oldest first (the segments page's share charts)."""
    rows: list[Any] = list(
        SegmentationModel.objects.filter(run__status=SegmentationRun.Status.SUCCEEDED)
        .order_by("-run__started_at")
        .values(
            "run_id", "run__started_at", "run__sizes", "artifact__identities", "artifact__keys"
        )[:runs]
    )
    rows.reverse()
    return rows


def run_list(limit: int) -> list[SegmentationRun]:
    """The latest runs, newest first, with what the segments page shows of them."""
    fields = ("pk", "status", "trigger", "started_at", "rows", "k", "silhouette", "timings",
              "model_version", "error")  # fmt: skip
    return list(SegmentationRun.objects.order_by("-started_at").only(*fields)[:limit])


def run_latest_succeeded() -> Any:
    """The latest succeeded run's id, start and drift report."""
    return (
        SegmentationRun.objects.filter(status=SegmentationRun.Status.SUCCEEDED)
        .order_by("-started_at")
        .values("pk", "started_at", "drift")
        .first()
    )
