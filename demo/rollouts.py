"""Demo rollout history: three days of synthetic telemetry through the real controller.

`lead-summary` ramps in production, one capability segment after another; in one of them
the on-device summariser crashes three times as often as the baseline, and the controller
rolls that segment back by itself, leaving the evidence in the audit log. `smart-compose` is
generally available in production (complete in every segment) and starts ramping in
staging. Aggregates are written as the telemetry fold writes them (one row per arm and
hour) and every hour of the story is decided by `rollout_tick`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from django.utils import timezone

from rollout.audit import Actor
from rollout.controller import rollout_tick
from rollout.engine.capability import SAVE_DATA_SEGMENT
from rollout.guardrails.simulation import Effect, Population, arm_aggregates
from rollout.guardrails.states import PENDING
from rollout.models import FlagState, MetricBucket, ModelVersion, RolloutPlan, SegmentRollout
from rollout.rollouts import rollout_plan_create, segment_transition
from rollout.selectors import plan_rows_by_key, with_segment_keys
from rollout.services import flag_state_update

HISTORY_HOURS = 72
DEVICES_PER_HOUR = 1000
DEMO = Actor("demo")
# The demo page's own environment: its public client key (embedded in /demo/) evaluates and
# reports only there, never in production.
DEMO_ENVIRONMENT = "demo"
CRASHING = Effect(failure_ratio=3.0)


def _segment_plan(rows: list[SegmentRollout]) -> dict[str, tuple[int, Effect]]:
    """(start hour, effect) per segment; segments left out stay pending (new, for review)."""
    keys = [row.segment_key for row in rows if row.segment_key != SAVE_DATA_SEGMENT]
    starts = [0, 0, 36, 60]
    plan = {key: (start, Effect()) for key, start in zip(keys, starts, strict=False)}
    if len(keys) >= 2:
        plan[keys[1]] = (0, CRASHING)  # the one the guardrails catch
    return plan


def _feed(row: SegmentRollout, at: datetime, effect: Effect, rng: np.random.Generator) -> None:
    percentage = row.percentage
    arrivals = int(rng.poisson(DEVICES_PER_HOUR))
    treatment = int(rng.binomial(arrivals, percentage / 100.0))
    state = row.plan.flag_state
    for arm, count, arm_effect in (
        ("treatment", treatment, effect),
        ("control", arrivals - treatment, Effect()),
    ):
        columns = arm_aggregates(rng, count, Population(), arm_effect)
        if columns:
            MetricBucket.objects.create(
                environment_id=state.environment_id,
                flag=state.flag.key,
                segment_identity=row.segment_identity,
                arm=arm,
                minute=at,
                **columns,
            )


def _generally_available(environment: str, now: datetime) -> bool:
    """smart-compose at 100 % in every segment of `environment` (a one-stage plan), so every
    segment is complete and the demo page's telemetry has an arm to land in; False when the
    plan was there already."""
    compose = FlagState.objects.select_related("flag", "environment").get(
        flag__key="smart-compose", environment__key=environment
    )
    if RolloutPlan.objects.filter(flag_state=compose).exists():
        return False
    rollout_plan_create(
        state=compose,
        actor=DEMO,
        reason="demo: smart compose is generally available",
        stages=[{"percentage": 100}],
        now=now,
    )
    return True


def _ramp_next_model(staging: FlagState, start: datetime) -> None:
    """Staging tries smart compose's next model version: v3 against v2, ramped to 25 % in one
    segment since the start of the history, the other segments waiting."""
    model = ModelVersion.objects.filter(flag=staging.flag).order_by("-pk").first()
    plan = rollout_plan_create(
        state=staging,
        actor=DEMO,
        reason="demo: try the next reply model in staging",
        target_model=model,
        start=False,
        now=start,
    )
    rows = [r for r in plan_rows_by_key(plan) if r.segment_key != SAVE_DATA_SEGMENT]
    if rows:
        for _ in range(3):  # 1 %, 5 %, then 25 %
            segment_transition(
                row=rows[0], action="advance", actor=DEMO, reason="demo: ramp v3", now=start
            )


def demo_rollouts_load(now: datetime | None = None) -> list[str]:
    """Create the demo rollouts and their history (once); return a line per thing created."""
    now = (now or timezone.now()).replace(minute=0, second=0, microsecond=0)
    created = []
    if _generally_available(DEMO_ENVIRONMENT, now):
        created.append(f"smart-compose generally available in {DEMO_ENVIRONMENT}")
    if RolloutPlan.objects.exclude(flag_state__environment__key=DEMO_ENVIRONMENT).exists():
        return created
    start = now - timedelta(hours=HISTORY_HOURS)
    lead_summary = FlagState.objects.select_related("flag", "environment").get(
        flag__key="lead-summary", environment__key="production"
    )
    plan = rollout_plan_create(
        state=lead_summary,
        actor=DEMO,
        reason="demo: ramp the on-device lead summary",
        start=False,
        now=start,
    )
    rows = plan_rows_by_key(plan)
    story = _segment_plan(rows)
    rng = np.random.default_rng(2026)
    for hour in range(HISTORY_HOURS):
        at = start + timedelta(hours=hour)
        for row in rows:
            start_hour, effect = story.get(row.segment_key, (None, Effect()))
            if start_hour == hour:
                segment_transition(
                    row=row, action="advance", actor=DEMO, reason="demo: start ramping", now=at
                )
            row.refresh_from_db()
            if row.state != PENDING and start_hour is not None:
                _feed(row, at + timedelta(minutes=30), effect, rng)
        rollout_tick(at + timedelta(hours=1))
    _generally_available("production", now)
    staging = FlagState.objects.select_related("flag", "environment").get(
        flag__key="smart-compose", environment__key="staging"
    )
    staging = flag_state_update(state=staging, enabled=True)
    _ramp_next_model(staging, start)
    states = sorted(
        f"{row.segment_key}: {row.get_state_display()} ({row.percentage} %)"
        for row in with_segment_keys(plan.segments.all())
    )
    created.append(
        f"lead-summary rollout in production after {HISTORY_HOURS} h: " + "; ".join(states)
    )
    return created
