"""A person's review of learned segments (accept, rename, merge) and "Run now": the one door
the console, the admin and the command line go through. The segments app changes its own
rows; this module adds the role check, the audit entry and what the rollout side has to say
(rules that spell a renamed key, a merged segment's own rollout rows), in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.db import transaction

from ops.json_input import text_problem
from rollout.audit import Actor, audit_record
from rollout.models import Segment, SegmentRollout, TargetingRule
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
                    f"Key {before['key']} → {after['key']}: its rollouts, their guardrail "
                    "evidence, the plans that name it and its stored profiles stay as they "
                    "are (they refer to the segment, not its key); clients get the new key "
                    "with the next snapshot."
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
            f"({change.profiles_moved:,} stored profile(s)) get the key {form.into}, "
            f"and with it {form.into}'s rollout state.",
            f"{before['key']}'s own rollout rows ({self.kept_rows}) are kept as they are.",
        ]


def _mentions(key: str) -> int:
    quoted = f'"{key}"'
    return (
        TargetingRule.objects.filter(constraints__icontains=quoted).count()
        + Segment.objects.filter(constraints__icontains=quoted).count()
    )


@transaction.atomic
def segment_review(*, actor: Actor, request: ReviewRequest) -> ReviewOutcome:
    """Accept, rename or merge a learned segment, with an audit entry; needs the release
    manager role. A rename reports the rules that spell the old key (nothing else refers
    to a segment by key)."""
    role_require(actor, "change", "segments.capabilitysegment")
    form = request
    form.check()
    outcome: ReviewOutcome
    if form.action == "accept":
        outcome = ReviewOutcome(form, segment_accept(key=form.segment))
    elif form.action == "rename":
        change = segment_rename(key=form.segment, new_key=form.key, new_label=form.label)
        old, new = change.before["key"], change.after["key"]
        outcome = ReviewOutcome(form, change, rules=_mentions(old) if old != new else 0)
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
