"""The rollout controller: every minute, each ramping segment is advanced, held, rolled back
or left alone by the decision rule of docs/guardrails.md over its stage's aggregates.

The decision itself is pure (rollout.guardrails.decision.decide); this module reads the
aggregates, applies verdicts through rollout.rollouts.segment_transition (audit + publish)
and records the latest verdict for the dashboard. Ticks are idempotent: a second tick at the
same instant sees the state the first one left and changes nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from ops import metrics
from rollout.audit import CONTROLLER
from rollout.guardrails import decision as guardrails
from rollout.guardrails import states
from rollout.guardrails.plan import PlanInvalid
from rollout.models import SegmentRollout
from rollout.rollouts import segment_transition
from rollout.selectors import segment_stage_window, with_segment_keys

logger = logging.getLogger(__name__)


@dataclass
class TickReport:
    """What one tick did: counts per outcome, and the transitions it made."""

    now: datetime
    checked: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    transitions: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = ", ".join(f"{count} {name}" for name, count in sorted(self.outcomes.items()))
        return f"{self.now.isoformat()}: {self.checked} segment(s) checked" + (
            f" ({parts})" if parts else ""
        )


def _transition_for(row: SegmentRollout, verdict: guardrails.Verdict) -> tuple[str, str] | None:
    """(action, reason) the verdict asks of the segment in its state, or None."""
    if verdict.action == states.ROLLBACK:
        return states.ROLLBACK, f"guardrail fired: {verdict.reason}"
    if row.state == states.HELD:
        # A no-data hold clears itself when data returns; SRM and timeout holds wait for
        # a person.
        if row.hold_reason == states.HOLD_NO_DATA and verdict.hold_reason != states.HOLD_NO_DATA:
            return states.RESUME, "data arrived again"
        return None
    if verdict.action in (states.HOLD, states.ADVANCE):
        return verdict.action, verdict.reason
    return None


def _apply(row: SegmentRollout, verdict: guardrails.Verdict, now: datetime) -> str | None:
    """Carry out a verdict; returns the transition made, if any."""
    transition = _transition_for(row, verdict)
    if transition is None:
        return None
    action, reason = transition
    segment_transition(
        row=row,
        action=action,
        actor=CONTROLLER,
        reason=reason,
        evidence=verdict.evidence_json(),
        hold_reason=verdict.hold_reason if action == states.HOLD else "",
        stage_log_e=verdict.stage_log_e() if action == states.ADVANCE else None,
        now=now,
    )
    return action


def rollout_tick(now: datetime | None = None) -> TickReport:
    """One pass of the controller over every ramping or held segment."""
    now = now or timezone.now()
    report = TickReport(now)
    rows = with_segment_keys(
        SegmentRollout.objects.filter(state__in=(states.RAMPING, states.HELD)).select_related(
            "plan__flag_state__flag", "plan__flag_state__environment"
        )
    )
    for row in rows.order_by("pk"):
        report.checked += 1
        try:
            plan = row.plan.spec()
        except PlanInvalid as exc:
            logger.warning("rollout %s: plan invalid, skipped: %s", row, exc)
            report.outcomes["invalid plan"] += 1
            continue
        if row.last_checked_at is not None and row.last_checked_at >= now:
            # Decided at this instant already (or later): a repeated tick changes nothing.
            report.outcomes["already checked"] += 1
            continue
        window = segment_stage_window(row, now)
        verdict = guardrails.decide(
            plan, row.stage, row.stage_age_hours(now), window, dict(row.carried_evidence or {})
        )
        done = _apply(row, verdict, now)
        report.outcomes[done or verdict.action] += 1
        metrics.controller_decisions.labels(done or verdict.action).inc()
        if done is not None:
            report.transitions.append(f"{row}: {done} — {verdict.reason}")
        else:
            SegmentRollout.objects.filter(pk=row.pk).update(
                last_verdict=verdict.evidence_json(), last_checked_at=now
            )
    return report
