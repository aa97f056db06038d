"""A person's review of learned segments (accept, rename, merge) and "Run now": the one door
the console and the admin both go through. The segments app changes its own rows; this
module adds the rollout side, the role check and the audit entry in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.db import transaction

from ops.json_input import text_problem
from rollout.audit import Actor, audit_record
from rollout.models import RolloutPlan, Segment, SegmentRollout, TargetingRule
from rollout.roles import role_require
from rollout.rollouts import MAX_REASON_LENGTH
from segments.models import SegmentationRun
from segments.services import (
    SegmentChange,
    SegmentError,
    segment_accept,
    segment_merge,
    segment_rename,
    segmentation_run,
)
from segments.tasks import run_segmentation

ACTIONS = ("accept", "rename", "merge")


@dataclass(frozen=True)
class ReviewRequest:
    """One review action on a learned segment, as a person asked for it."""

    action: str
    segment: str
    key: str = ""
    label: str = ""
    into: str = ""
    reason: str = ""

    @classmethod
    def from_post(cls, data: Mapping[str, str]) -> ReviewRequest:
        return cls(**{name: str(data.get(name, "")).strip() for name in cls.__dataclass_fields__})

    def check(self) -> None:
        if self.action not in ACTIONS:
            raise SegmentError("action", f"must be one of {', '.join(ACTIONS)}")
        if not self.segment:
            raise SegmentError("segment", "required: the key of the segment to change")
        if self.action == "merge" and not self.into:
            raise SegmentError("into", "required: the segment to merge into")
        if len(self.reason) > MAX_REASON_LENGTH:
            raise SegmentError("reason", f"at most {MAX_REASON_LENGTH} characters")
        for name in self.__dataclass_fields__:  # PostgreSQL refuses a NUL in text
            problem = text_problem(getattr(self, name))
            if problem is not None:
                raise SegmentError(name, problem)


@dataclass(frozen=True)
class ReviewOutcome:
    """What a review action did, rollout side included, in words for the confirmation."""

    form: ReviewRequest
    change: SegmentChange
    plans: int = 0  # rollout plans whose segment lists were updated (rename)
    rules: int = 0  # targeting rules and rule segments that mention the old key (rename)
    kept_rows: int = 0  # the merged segment's own rollout rows, left as they were (merge)

    def sentences(self) -> list[str]:
        form, change = self.form, self.change
        before, after = change.before, change.after
        if form.action == "accept":
            return [
                f"{before['key']} ({before['label']}) becomes active: rollouts that cover it "
                "treat it like every other segment."
            ]
        if form.action == "rename":
            said = []
            if before["key"] != after["key"]:
                said.append(
                    f"Key {before['key']} → {after['key']}: its rollouts and their guardrail "
                    f"evidence stay as they are; {self.plans} rollout plan list(s) and "
                    f"{change.profiles_relabelled:,} stored profile(s) follow the new key."
                )
            if before["label"] != after["label"]:
                said.append(f"Label “{before['label']}” → “{after['label']}”.")
            if self.rules:
                said.append(
                    f"{self.rules} targeting rule(s) or rule segment(s) mention "
                    f"{before['key']} in their constraints: edit them to use {after['key']}."
                )
            return said
        return [
            f"{before['key']} retires into {form.into}: its clients "
            f"({change.profiles_relabelled:,} stored profile(s)) get the key {form.into}, "
            f"and with it {form.into}'s rollout state.",
            f"{before['key']}'s own rollout rows ({self.kept_rows}) are kept as they are.",
        ]


def _rename_plan_lists(old: str, new: str) -> int:
    """Rename `old` to `new` in the plans' segment lists; returns how many plans changed.
    (Rollout rows and metric buckets hang off the segment's identity: they stay.)"""
    plans = 0
    for plan in RolloutPlan.objects.all():
        included, excluded = plan.included_segments or [], plan.excluded_segments or []
        if old in included or old in excluded:
            plan.included_segments = [new if k == old else k for k in included]
            plan.excluded_segments = [new if k == old else k for k in excluded]
            plan.save(update_fields=["included_segments", "excluded_segments", "updated_at"])
            plans += 1
    return plans


def _mentions(key: str) -> int:
    quoted = f'"{key}"'
    return (
        TargetingRule.objects.filter(constraints__icontains=quoted).count()
        + Segment.objects.filter(constraints__icontains=quoted).count()
    )


@transaction.atomic
def segment_review(*, actor: Actor, request: ReviewRequest) -> ReviewOutcome:
    """Accept, rename or merge a learned segment, with its rollout side (rows and plans
    follow a rename) and an audit entry; needs the release manager role."""
    role_require(actor, "change", "segments.capabilitysegment")
    form = request
    form.check()
    outcome: ReviewOutcome
    if form.action == "accept":
        outcome = ReviewOutcome(form, segment_accept(key=form.segment))
    elif form.action == "rename":
        change = segment_rename(key=form.segment, new_key=form.key, new_label=form.label)
        old, new = change.before["key"], change.after["key"]
        plans = _rename_plan_lists(old, new) if old != new else 0
        outcome = ReviewOutcome(form, change, plans, _mentions(old) if old != new else 0)
    else:
        change = segment_merge(key=form.segment, into=form.into)
        kept = SegmentRollout.objects.filter(segment_identity=change.segment.identity).count()
        outcome = ReviewOutcome(form, change, kept_rows=kept)
    audit_record(
        actor=actor,
        action=f"segment.{form.action}",
        segment=form.segment,
        segment_identity=outcome.change.segment.identity,
        before=outcome.change.before,
        after=outcome.change.after,
        reason=form.reason,
    )
    return outcome


@transaction.atomic
def segmentation_queue(*, actor: Actor, reason: str = "") -> None:
    """Queue a segmentation run on the workers (once the audit entry commits); needs the
    release manager role."""
    role_require(actor, "add", "segments.segmentationrun")
    audit_record(actor=actor, action="segmentation.run", reason=reason or "run now")
    transaction.on_commit(lambda: run_segmentation.delay(trigger="admin"))


def segmentation_run_foreground(
    *, actor: Actor, seed: int = 0, progress: Callable[[str], None] | None = None
) -> SegmentationRun:
    """Run segmentation here and now (the command line), audited before it starts: a run
    that fails still says who started it."""
    with transaction.atomic():
        role_require(actor, "add", "segments.segmentationrun")
        audit_record(actor=actor, action="segmentation.run", reason=f"foreground run, seed {seed}")
    return segmentation_run(trigger="command", seed=seed, progress=progress)
