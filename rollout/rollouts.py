"""Writes of rollouts: plans, segment transitions, manual actions and the kill switch.

Every transition goes through `segment_transition`: the pure state machine decides whether
it applies, the row and an audit entry are written in one transaction, and a new snapshot
is published on commit so that every API process serves the change within a second.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from capability_probe.models import ClientProfile
from ops.errors import Conflict, DomainError, NotFound
from ops.json_input import text_problem
from rollout.audit import Actor, audit_record
from rollout.edge_models import model_version_serve
from rollout.engine.capability import SAVE_DATA_IDENTITY, SAVE_DATA_SEGMENT
from rollout.guardrails import states
from rollout.guardrails.plan import (
    PlanInvalid,
    check_segment_keys,
    default_guardrails_json,
    default_stages_json,
)
from rollout.guardrails.states import TransitionInvalid
from rollout.models import FlagState, ModelVersion, RolloutPlan, SegmentRollout
from rollout.roles import role_require
from rollout.selectors import (
    plan_segment_keys,
    segment_identities,
    segment_identity,
    segment_key_of,
    with_segment_keys,
)
from rollout.snapshots.publish import snapshot_publish_on_commit
from segments.selectors import segment_list

MAX_REASON_LENGTH = 2000
P95_SAMPLE = 100_000  # profiles read to freeze a segment's pre-rollout latency p95


class RolloutError(DomainError):
    """A rollout request that cannot be carried out; `field` names what was wrong."""


class RolloutNotFound(RolloutError, NotFound):
    """The flag, environment, segment or action the request names has no rollout."""


class RolloutConflict(RolloutError, Conflict):
    """The rollout is not in a state the request applies to."""


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise RolloutError("reason", "required: say why (it goes into the audit log)")
    if len(reason) > MAX_REASON_LENGTH:
        raise RolloutError("reason", f"at most {MAX_REASON_LENGTH} characters")
    problem = text_problem(reason)
    if problem is not None:  # PostgreSQL refuses a NUL in text
        raise RolloutError("reason", problem)
    return reason


def known_segments() -> dict[int, str]:
    """The segments a rollout can cover, key by identity: the live capability segments and
    save-data."""
    known = {s.identity: s.key for s in segment_list() if s.status != "retired"}
    known.setdefault(SAVE_DATA_IDENTITY, SAVE_DATA_SEGMENT)
    return known


def plan_segments_from_keys(keys: Any, where: str) -> list[int | str]:
    """A plan's segment list as a person names it (keys, "*") -> as the plan stores it
    (identities, "*"); DomainError naming `where` for a malformed list or an unknown key."""
    try:
        check_segment_keys(keys, where)
    except PlanInvalid as exc:
        raise DomainError(where, str(exc).partition(": ")[2] or str(exc)) from None
    identities = segment_identities()
    unknown = [key for key in keys if key != "*" and key not in identities]
    if unknown:
        known = ", ".join(sorted(identities))
        raise DomainError(where, f"no segment {unknown[0]!r} (known: {known})")
    return [key if key == "*" else identities[key] for key in keys]


def _state_json(row: SegmentRollout) -> dict[str, Any]:
    return {
        "state": row.state,
        "stage": row.stage,
        "percentage": row.percentage,
        "holdReason": row.hold_reason or None,
    }


def frozen_latency_p95(segment_identity: int) -> float | None:
    """The segment's pre-rollout p95 of the reference model's inference time (ms), from
    its clients' probes; None when too few reported one."""
    values = list(
        ClientProfile.objects.filter(segment_identity=segment_identity, benchmark_ms__isnull=False)
        .order_by()
        .values_list("benchmark_ms", flat=True)[:P95_SAMPLE]
    )
    if len(values) < 20:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), 95))


def _publish(row: SegmentRollout, why: str) -> None:
    snapshot_publish_on_commit(
        environment_ids={row.plan.flag_state.environment_id},
        reason=f"{row.plan.flag_state.flag.key}/{segment_key_of(row)}: {why}",
    )


@transaction.atomic
def segment_transition(
    *,
    row: SegmentRollout,
    action: str,
    actor: Actor,
    reason: str,
    evidence: dict[str, Any] | None = None,
    hold_reason: str = "",
    stage_log_e: dict[str, float] | None = None,
    now: datetime | None = None,
) -> SegmentRollout:
    """Apply `action` to one segment (raises RolloutError when it does not apply)."""
    role_require(actor, "change", "rollout.segmentrollout")
    now = now or timezone.now()
    row = with_segment_keys(
        SegmentRollout.objects.select_for_update().select_related(
            "plan__flag_state__flag", "plan__flag_state__environment"
        )
    ).get(pk=row.pk)
    key = segment_key_of(row)
    before = row.position
    try:
        after = states.transition(before, action, row.plan.stage_percentages(), hold_reason)
    except TransitionInvalid as exc:
        raise RolloutConflict("action", str(exc)) from exc
    before_json = _state_json(row)
    if action == states.ADVANCE and before.state not in (states.PENDING, states.ROLLED_BACK):
        # The finished stage's evidence multiplies into the next (docs/guardrails.md).
        carried = dict(row.carried_evidence or {})
        for metric, log_e in (stage_log_e or {}).items():
            carried[metric] = carried.get(metric, 0.0) + log_e
        row.carried_evidence = carried
    if before.state in (states.PENDING, states.ROLLED_BACK) and after.state != before.state:
        row.carried_evidence = {}  # a fresh start
        if row.latency_p95_ms is None:
            row.latency_p95_ms = frozen_latency_p95(row.segment_identity)
    if states.restarts_stage(before, after):
        row.stage_started_at = now
    row.state, row.stage, row.hold_reason = after.state, after.stage, after.hold_reason
    if evidence is not None:  # a controller decision: what it saw, and when
        row.last_verdict = evidence
        row.last_checked_at = now
    row.save()
    state = row.plan.flag_state
    audit_record(
        actor=actor,
        action=f"rollout.{action}",
        environment=state.environment.key,
        flag=state.flag.key,
        segment=key,
        segment_identity=row.segment_identity,
        before=before_json,
        after=_state_json(row),
        reason=reason,
        evidence=evidence,
        at=now,
    )
    _publish(row, f"{action} ({actor.name})")
    return row


def _ladder_keys(state: FlagState) -> list[str]:
    return list(state.flag.rungs.order_by("order", "pk").values_list("key", flat=True))


@transaction.atomic
def rollout_plan_create(
    *,
    state: FlagState,
    actor: Actor,
    reason: str = "new rollout",
    target_rung: str = "",
    stages: list[dict[str, Any]] | None = None,
    guardrails: list[dict[str, Any]] | None = None,
    included_segments: list[str] | None = None,
    excluded_segments: list[str] | None = None,
    start: bool = True,
    now: datetime | None = None,
    target_model: ModelVersion | None = None,
    **settings: Any,
) -> RolloutPlan:
    """A plan for an edge feature in one environment; with `start`, every covered segment
    begins its first stage at once (otherwise they wait, pending). With `target_model`, the
    plan ramps that model version on its rung instead of a rung.

    A plan whose every segment has completed is replaced (its rung is generally available,
    and a completed model version becomes the one the environment serves); any other plan
    stands in the way (RolloutConflict)."""
    role_require(actor, "add", "rollout.rolloutplan")
    if not _ladder_keys(state):
        raise RolloutError("flag", f"{state.flag.key} has no ladder: only edge features ramp")
    existing = RolloutPlan.objects.filter(flag_state=state).select_related("target_model").first()
    if existing is not None:
        _retire_completed(existing, actor, reason, now)
    plan = RolloutPlan(
        flag_state=state,
        target_model=target_model,
        target_rung=target_rung or (target_model.rung if target_model is not None else ""),
        stages=stages if stages is not None else default_stages_json(),
        guardrails=guardrails if guardrails is not None else default_guardrails_json(),
        included_segments=plan_segments_from_keys(
            included_segments if included_segments is not None else ["*"], "includedSegments"
        ),
        excluded_segments=plan_segments_from_keys(excluded_segments or [], "excludedSegments"),
        **settings,
    )
    plan.full_clean()
    plan.save()
    audit_record(
        actor=actor,
        action="rollout.plan",
        environment=state.environment.key,
        flag=state.flag.key,
        after={
            "targetRung": plan.target_rung or _ladder_keys(state)[0],
            "targetModelVersion": target_model.version if target_model is not None else None,
            "stages": plan.stages,
            "guardrails": plan.guardrails,
            "alpha": plan.alpha,
            "includedSegments": plan_segment_keys(plan.included_segments),
            "excludedSegments": plan_segment_keys(plan.excluded_segments),
        },
        reason=reason,
        at=now,
    )
    for row in rollout_segments_sync(plan=plan):
        if start:
            segment_transition(
                row=row, action=states.ADVANCE, actor=actor, reason="rollout started", now=now
            )
    return plan


def _retire_completed(plan: RolloutPlan, actor: Actor, reason: str, now: datetime | None) -> None:
    """Make way for a new plan: only a plan complete in every segment may go."""
    unfinished = plan.segments.exclude(state=states.COMPLETE).count()
    if unfinished or not plan.segments.exists():
        raise RolloutConflict(
            "flag",
            f"{plan.flag_state} already has a rollout plan ({unfinished} segment(s) not "
            "complete): finish it, or roll it back and delete it, first",
        )
    state = plan.flag_state
    if plan.target_model is not None:
        # Complete everywhere: the version is the environment's from now on.
        model_version_serve(
            state=state, version=plan.target_model, actor=actor, reason=reason or "rollout done"
        )
    audit_record(
        actor=actor,
        action="rollout.retire",
        environment=state.environment.key,
        flag=state.flag.key,
        before={
            "targetRung": plan.target_rung,
            "targetModelVersion": plan.target_model.version if plan.target_model else None,
        },
        reason=reason or "complete plan replaced",
        at=now,
    )
    plan.delete()


def rollout_segments_sync(*, plan: RolloutPlan | None = None) -> list[SegmentRollout]:
    """Give every covered segment a row (new ones start pending); returns the new rows."""
    plans = [plan] if plan is not None else list(RolloutPlan.objects.all())
    segments = known_segments()
    created = []
    for each in plans:
        existing = set(each.segments.values_list("segment_identity", flat=True))
        for identity, key in segments.items():
            if identity not in existing and each.covers(identity):
                row = SegmentRollout.objects.create(plan=each, segment_identity=identity)
                row.segment_key = key
                created.append(row)
    return created


def segment_rollout_get(*, flag: str, environment: str, segment: str) -> SegmentRollout:
    """The segment's rollout row, or RolloutNotFound naming what is missing."""
    plan = rollout_plan_get(flag=flag, environment=environment)
    identity = segment_identity(segment)
    row = None
    if identity is not None:
        row = with_segment_keys(plan.segments.filter(segment_identity=identity)).first()
    if row is None:
        raise RolloutNotFound(
            "segment", f"{segment!r} is not part of the rollout of {flag} in {environment}"
        )
    return row


def rollout_plan_get(*, flag: str, environment: str) -> RolloutPlan:
    plan = (
        RolloutPlan.objects.select_related("flag_state__flag", "flag_state__environment")
        .filter(flag_state__flag__key=flag, flag_state__environment__key=environment)
        .first()
    )
    if plan is None:
        raise RolloutNotFound("flag", f"{flag} has no rollout in environment {environment!r}")
    return plan


def rollout_action(
    *, flag: str, environment: str, segment: str, action: str, actor: Actor, reason: str
) -> SegmentRollout:
    """A person's rollback, pause, resume or advance of one segment."""
    if action not in states.MANUAL_ACTIONS:
        raise RolloutNotFound("action", f"must be one of {', '.join(states.MANUAL_ACTIONS)}")
    reason = _require_reason(reason)
    row = segment_rollout_get(flag=flag, environment=environment, segment=segment)
    return segment_transition(row=row, action=action, actor=actor, reason=reason)


@transaction.atomic
def rollout_kill(*, flag: str, environment: str, actor: Actor, reason: str) -> list[SegmentRollout]:
    """The kill switch: roll back every segment of the flag's rollout that is not rolled
    back yet; returns the rows that changed."""
    role_require(actor, "change", "rollout.segmentrollout")
    reason = _require_reason(reason)
    plan = rollout_plan_get(flag=flag, environment=environment)
    rows = list(plan.segments.exclude(state=states.ROLLED_BACK).order_by("segment_identity"))
    return [
        segment_transition(row=row, action=states.ROLLBACK, actor=actor, reason=reason)
        for row in rows
    ]
