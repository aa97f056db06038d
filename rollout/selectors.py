"""Reads of the rollout app: what the console, the API and the controller are handed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Count, Max, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDay, TruncHour

from ops.errors import NotFound
from rollout.engine.capability import SAVE_DATA_IDENTITY, SAVE_DATA_SEGMENT
from rollout.engine.ladder import CONTROL, TREATMENT, explain
from rollout.guardrails import states
from rollout.guardrails.decision import StageWindow
from rollout.guardrails.plan import PlanSpec
from rollout.guardrails.series import (
    SUMMED,
    Bucket,
    FailureMinute,
    exposures_of,
    stage_series,
    stage_window,
)
from rollout.guardrails.series import StagePoint as StagePoint  # handed over with the series
from rollout.histogram import INFERENCE_BINS
from rollout.models import (
    AuditEntry,
    Environment,
    Flag,
    FlagState,
    MetricBucket,
    ModelVersion,
    RetrainingRequest,
    RolloutPlan,
    Rung,
    SegmentRollout,
)
from segments.models import CapabilitySegment
from segments.selectors import segment_identity_of

RolloutRows = QuerySet[SegmentRollout]


def segment_keys() -> dict[int, str]:
    """Every segment's current key by its identity, the save-data segment's included."""
    keys = dict(CapabilitySegment.objects.values_list("identity", "key"))
    keys[SAVE_DATA_IDENTITY] = SAVE_DATA_SEGMENT
    return keys


def segment_identities() -> dict[str, int]:
    """Every segment's identity by its current key, the save-data segment's included."""
    return {key: identity for identity, key in segment_keys().items()}


def segment_identity(key: str) -> int | None:
    """The identity of the segment whose key is `key` now, if there is one."""
    return segment_identity_of(key)


def plan_segment_keys(stored: list[int | str] | None) -> list[str]:
    """A plan's stored segment list (identities, "*") as people read it: current keys."""
    keys = segment_keys()
    return [
        item if isinstance(item, str) else keys.get(item, f"segment-{item}")
        for item in stored or []
    ]


def with_segment_keys(rows: RolloutRows) -> RolloutRows:
    """`rows` with each one's current segment key as `segment_key` (one subquery, no query
    per row): what people and the snapshot call the segment."""
    current = CapabilitySegment.objects.filter(identity=OuterRef("segment_identity"))
    key = Coalesce(Subquery(current.values("key")[:1]), Value(SAVE_DATA_SEGMENT))
    return rows.annotate(segment_key=key)  # type: ignore[no-redef]  # declared on the model


def plan_rows_by_key(plan: RolloutPlan) -> list[SegmentRollout]:
    """The plan's segment rollouts with their current keys, in key order (what pages and
    answers list)."""
    return sorted(with_segment_keys(plan.segments.all()), key=lambda row: row.segment_key)


def segment_key_of(row: SegmentRollout) -> str:
    """The row's current segment key (annotated by with_segment_keys, else looked up)."""
    key = getattr(row, "segment_key", None)
    if key is None:
        key = segment_keys().get(row.segment_identity, f"segment-{row.segment_identity}")
        row.segment_key = key
    return key


def flag_list() -> QuerySet[Flag]:
    """Every flag with its per-environment states (and their environments) prefetched."""
    return Flag.objects.prefetch_related(
        "states__environment", "states__rules", "states__model_version"
    ).order_by("key")


def flag_get(*, key: str) -> Flag:
    """The flag with `key`, or NotFound naming it."""
    flag = Flag.objects.filter(key=key).first()
    if flag is None:
        raise NotFound("flag", f"no flag {key[:200]!r}")
    return flag


def model_versions_of(flag: Flag) -> QuerySet[ModelVersion]:
    """The flag's model versions, newest first, with the environments serving each."""
    return (
        ModelVersion.objects.filter(flag=flag)
        .select_related("flag")
        .prefetch_related("serving_states__environment")
    )


def flag_ladder(state: FlagState, plan: RolloutPlan | None) -> list[dict[str, Any]]:
    """The flag's rungs, best first, with their requirements in words and their marks
    (the plan's target, the baseline, the safe rung)."""
    rungs = list(state.flag.rungs.order_by("order", "pk"))
    if not rungs:
        return []
    baseline = state.flag.baseline_rung or rungs[-1].key
    target = (plan.target_rung if plan else "") or rungs[0].key
    return [
        {
            "key": rung.key,
            "runs_on": rung.get_runs_on_display(),
            "requirements": [explain(c) for c in rung.requirements or []],
            "component": (rung.ui_state or {}).get("component", ""),
            "marks": [
                name
                for name, on in (
                    ("target", plan is not None and rung.key == target),
                    ("baseline", rung.key == baseline),
                    ("safe", rung.key == state.flag.safe_rung),
                )
                if on
            ],
        }
        for rung in rungs
    ]


def _stage_start(row: SegmentRollout, now: datetime) -> datetime:
    # Whole minutes: the buckets are per minute.
    return (row.stage_started_at or now).replace(second=0, microsecond=0)


ROLLOUT_ARMS = (TREATMENT, CONTROL)


def _failure_minutes(buckets: QuerySet[MetricBucket]) -> list[tuple[int, FailureMinute]]:
    """(segment, minute) for every arm in each minute in which some arm failed: the crash
    e-process needs per-minute exposure shares only there (a minute without a failure adds
    nothing to its log)."""
    failed = buckets.filter(failures__gt=0)
    minutes = buckets.filter(minute__in=failed.values("minute")).values(
        "segment_identity", "minute", "arm", "exposures", "client_exposures", "failures"
    )
    rows = list(minutes)
    # Another segment's failure in the same minute is not this segment's.
    hit = {(r["segment_identity"], r["minute"]) for r in rows if r["failures"]}
    return [
        (
            r["segment_identity"],
            FailureMinute(r["arm"], r["minute"], exposures_of(r), r["failures"]),
        )
        for r in rows
        if (r["segment_identity"], r["minute"]) in hit
    ]


def segment_stage_window(row: SegmentRollout, now: datetime) -> StageWindow:
    """The aggregates of the segment's current stage up to `now`, summed in the database:
    what the controller decides on."""
    state = row.plan.flag_state
    buckets = MetricBucket.objects.filter(
        environment_id=state.environment_id,
        flag=state.flag.key,
        segment_identity=row.segment_identity,
        minute__gte=_stage_start(row, now),
        minute__lte=now,
        arm__in=ROLLOUT_ARMS,  # decisions outside the arms are counted, never compared
    )
    totals = [
        Bucket(item["arm"], item["latest"], item)
        for item in buckets.values("arm").annotate(
            latest=Max("minute"), **{name: Sum(name) for name in SUMMED}
        )
    ]
    failures = [minute for _, minute in _failure_minutes(buckets)]
    return stage_window(totals, failures, now)[0]


def _chart_starts(state: FlagState, rows: Sequence[SegmentRollout]) -> dict[int, datetime]:
    """Where each segment's charts start: its current stage; for a complete segment (nobody
    left in control), the last stage it ramped through (one audit query for them all)."""
    starts = {row.segment_identity: row.stage_started_at for row in rows if row.stage_started_at}
    complete = [row.segment_identity for row in rows if row.state == states.COMPLETE]
    if complete:
        entered: dict[int, list[datetime]] = defaultdict(list)
        for segment, at in (
            AuditEntry.objects.filter(
                flag=state.flag.key,
                environment=state.environment.key,
                segment_identity__in=complete,
                action__in=("rollout.advance", "rollout.resume"),
            )
            .order_by("-at", "-pk")
            .values_list("segment_identity", "at")
        ):
            if segment is not None:
                entered[segment].append(at)
        for segment in complete:
            if len(entered[segment]) > 1:
                starts[segment] = entered[segment][1]
    return starts


def stage_series_by_segment(
    state: FlagState, rows: Sequence[SegmentRollout], plan: PlanSpec, now: datetime
) -> dict[int, list[StagePoint]]:
    """Each segment's stage, cumulative from its start, at the end of every hour with data
    and at `now`, with the evidence the controller would gather at each instant (two
    queries for the whole flag). A segment that is not ramping is drawn as if at its
    stage's percentage, without carried evidence."""
    starts = _chart_starts(state, rows)
    if not starts:
        return {}
    buckets = MetricBucket.objects.filter(
        reduce(
            or_,
            (
                Q(
                    segment_identity=segment,
                    minute__gte=start.replace(second=0, microsecond=0),
                )
                for segment, start in starts.items()
            ),
        ),
        environment_id=state.environment_id,
        flag=state.flag.key,
        minute__lte=now,
        arm__in=ROLLOUT_ARMS,
    )
    hourly: dict[int, list[Bucket]] = defaultdict(list)
    for item in (
        buckets.annotate(hour=TruncHour("minute"))
        .values("segment_identity", "arm", "hour")
        .annotate(latest=Max("minute"), **{name: Sum(name) for name in SUMMED})
        .order_by("hour")
    ):
        hourly[item["segment_identity"]].append(Bucket(item["arm"], item["latest"], item))
    failures: dict[int, list[FailureMinute]] = defaultdict(list)
    for segment, minute in _failure_minutes(buckets):
        failures[segment].append(minute)
    percentages = tuple(stage.percentage for stage in plan.stages)
    series = {}
    for row in rows:
        segment = row.segment_identity
        if segment not in starts or not hourly[segment]:
            continue
        # The last minute of every hour with data, and now.
        instants = [
            min(now, b.latest.replace(minute=59, second=0, microsecond=0)) for b in hourly[segment]
        ]
        series[segment] = stage_series(
            plan,
            row.position.percentage(percentages),
            row.carried_evidence or {} if row.state in (states.RAMPING, states.HELD) else {},
            hourly[segment],
            failures[segment],
            [*instants, now],
        )
    return series


# --- What the console's pages are drawn from: one query per page region, none per row.


def environment_list() -> list[Environment]:
    return list(Environment.objects.order_by("key"))


def flag_states_overview(environment: Environment) -> QuerySet[FlagState]:
    """The environment's live flags with their rungs and rollout rows (three queries)."""
    return (
        FlagState.objects.filter(environment=environment, flag__archived=False)
        .select_related("flag", "rollout_plan__target_model", "model_version")
        .prefetch_related(
            Prefetch("flag__rungs", queryset=Rung.objects.order_by("order", "pk")),
            Prefetch("rollout_plan__segments", queryset=SegmentRollout.objects.all()),
        )
        .order_by("flag__key")
    )


def flag_tags() -> list[str]:
    """Every tag a live flag carries, sorted."""
    rows = Flag.objects.filter(archived=False).values_list("tags", flat=True)
    return sorted({tag for tags in rows for tag in tags or []})


def flag_state_of(key: str, environment: Environment | None) -> FlagState | None:
    return (
        FlagState.objects.select_related("flag", "environment")
        .filter(flag__key=key, environment=environment)
        .first()
    )


def flag_state_get(*, flag: str, environment: str) -> FlagState:
    """The flag's state in the environment (by keys), or NotFound naming what is missing."""
    state = (
        FlagState.objects.select_related("flag", "environment", "model_version")
        .filter(flag__key=flag, environment__key=environment)
        .first()
    )
    if state is None:
        if not Flag.objects.filter(key=flag).exists():
            raise NotFound("flag", f"no flag {flag!r}")
        raise NotFound("environment", f"no environment {environment!r}")
    return state


def rollout_plan_of(state: FlagState) -> RolloutPlan | None:
    return RolloutPlan.objects.filter(flag_state=state).first()


def flag_audit(state: FlagState, limit: int) -> list[AuditEntry]:
    """The flag's latest audit entries in the state's environment (one query)."""
    entries = AuditEntry.objects.filter(flag=state.flag.key, environment=state.environment.key)
    return list(entries[:limit])


def audit_entries(
    *,
    flag: str = "",
    environment: str = "",
    segment: str = "",
    actor: str = "",
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """The audit entries matching every filter given, newest first. A segment's entries are
    its whole history: under the keys it had before a rename too."""
    entries = AuditEntry.objects.all()
    if flag:
        entries = entries.filter(flag=flag)
    if environment:
        entries = entries.filter(environment=environment)
    if segment:
        identity = segment_identity(segment)
        entries = entries.filter(
            Q(segment=segment)
            | (Q(segment_identity=identity) if identity is not None else Q(pk__in=[]))
        )
    if actor:
        entries = entries.filter(actor_name=actor)
    if action:
        entries = entries.filter(action__startswith=action)
    if since is not None:
        entries = entries.filter(at__gte=since)
    if until is not None:
        entries = entries.filter(at__lte=until)
    return entries.order_by("-at", "-pk")


def audit_choices() -> dict[str, list[str]]:
    """The actions and actors the audit log holds (the audit page's filter choices)."""
    return {
        "actions": sorted(set(AuditEntry.objects.values_list("action", flat=True).distinct())),
        "actors": sorted(set(AuditEntry.objects.values_list("actor_name", flat=True).distinct())),
    }


def rollout_rows_by_segment() -> dict[int, int]:
    """How many rollout rows hang off each segment identity (every plan together)."""
    counts = SegmentRollout.objects.order_by().values("segment_identity").annotate(n=Count("pk"))
    return dict(counts.values_list("segment_identity", "n"))


def open_retraining_requests(state: FlagState, limit: int = 20) -> list[RetrainingRequest]:
    """The flag's unresolved retraining requests in the state's environment, newest first."""
    return list(
        RetrainingRequest.objects.filter(
            environment_id=state.environment_id, flag=state.flag.key, resolved_at__isnull=True
        ).prefetch_related("deliveries")[:limit]
    )


# What the model health page sums per (segment, rung, version) and per (day, rung, version).
HEALTH_SUMMED = (
    "clients",
    "failures",
    "inference_ms_n",
    "inference_ms_sum",
    *INFERENCE_BINS,
    "energy_n",
    "energy_sum",
    "rating_n",
    "rating_sum",
    "acceptance_n",
    "acceptance_sum",
    "freshness_n",
    "freshness_sum",
    "updates_full",
    "updates_full_failed",
    "updates_delta",
    "updates_delta_failed",
    "update_bytes_full",
    "update_bytes_delta",
)


def model_health_sums(
    state: FlagState, since: datetime, until: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The flag's aggregates in the state's environment over [since, until): per (segment,
    rung, model version), and per (day, rung, model version). Two queries."""
    buckets = MetricBucket.objects.filter(
        environment_id=state.environment_id,
        flag=state.flag.key,
        minute__gte=since,
        minute__lt=until,
    ).exclude(rung="")
    sums = {name: Sum(name) for name in HEALTH_SUMMED}
    by_cell = [
        dict(row)
        for row in buckets.values("segment_identity", "rung", "model_version")
        .annotate(**sums)
        .order_by("segment_identity", "rung", "model_version")
    ]
    by_day = [
        dict(row)
        for row in buckets.annotate(day=TruncDay("minute"))
        .values("day", "rung", "model_version")
        .annotate(**sums)
        .order_by("day", "rung", "model_version")
    ]
    return by_cell, by_day


def model_sizes(flag: Flag) -> dict[str, int]:
    """Each registered model version's full artifact size in bytes."""
    return dict(ModelVersion.objects.filter(flag=flag).values_list("version", "size_bytes"))
