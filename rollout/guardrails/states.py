"""The per-segment rollout state machine.

    pending ──advance──▶ ramping(0) ──advance──▶ ramping(1) … ──advance──▶ complete
                           │  ▲   │                                        │
                   pause ──┘  │   └── hold (SRM, no data, timeout) ──▶ held │
                           ▼  │ resume                                  │   │
                         paused ◀──────────────── pause ────────────────┘   │
    any state but rolled_back ──rollback──▶ rolled_back ──resume/advance──▶ ramping(0)

Entering a stage at 100 % completes the segment: with nobody left in control there is
nothing to compare. A paused or held segment keeps its percentage (a freeze, not a retreat);
a pending or rolled-back segment serves everyone the baseline rung.
"""

from __future__ import annotations

from dataclasses import dataclass

PENDING = "pending"
RAMPING = "ramping"
PAUSED = "paused"
HELD = "held"
COMPLETE = "complete"
ROLLED_BACK = "rolled_back"
STATES = (PENDING, RAMPING, PAUSED, HELD, COMPLETE, ROLLED_BACK)

ADVANCE = "advance"
PAUSE = "pause"
RESUME = "resume"
ROLLBACK = "rollback"
HOLD = "hold"
MANUAL_ACTIONS = (ROLLBACK, PAUSE, RESUME, ADVANCE)

HOLD_SRM = "srm"
HOLD_NO_DATA = "no_data"
HOLD_TIMEOUT = "timeout"
HOLD_REASONS = (HOLD_SRM, HOLD_NO_DATA, HOLD_TIMEOUT)


class TransitionInvalid(ValueError):
    """The action does not apply to the segment's current state."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where a segment stands: its state, its stage and, when held, why."""

    state: str
    stage: int = 0
    hold_reason: str = ""

    def percentage(self, stage_percentages: tuple[int, ...]) -> int:
        """The share of the segment in the treatment arm."""
        if self.state in (PENDING, ROLLED_BACK):
            return 0
        return stage_percentages[min(self.stage, len(stage_percentages) - 1)]


def _enter(stage: int, stage_percentages: tuple[int, ...]) -> Position:
    if stage >= len(stage_percentages):
        return Position(COMPLETE, len(stage_percentages) - 1)
    if stage_percentages[stage] >= 100:
        return Position(COMPLETE, stage)
    return Position(RAMPING, stage)


def transition(
    position: Position, action: str, stage_percentages: tuple[int, ...], hold_reason: str = ""
) -> Position:
    """The position after `action`; raises TransitionInvalid when it does not apply."""
    state = position.state
    if action == ROLLBACK:
        if state == ROLLED_BACK:
            raise TransitionInvalid("the segment is already rolled back")
        return Position(ROLLED_BACK, position.stage)
    if action == ADVANCE:
        if state == COMPLETE:
            raise TransitionInvalid("the segment's rollout is complete")
        if state in (PENDING, ROLLED_BACK):
            return _enter(0, stage_percentages)
        return _enter(position.stage + 1, stage_percentages)
    if action == PAUSE:
        if state not in (RAMPING, HELD):
            raise TransitionInvalid(f"only a ramping or held segment can be paused (it is {state})")
        return Position(PAUSED, position.stage)
    if action == RESUME:
        if state in (PAUSED, HELD):
            return Position(RAMPING, position.stage)
        if state == ROLLED_BACK:
            return _enter(0, stage_percentages)
        raise TransitionInvalid(
            f"only a paused, held or rolled-back segment can be resumed (it is {state})"
        )
    if action == HOLD:
        if hold_reason not in HOLD_REASONS:
            raise TransitionInvalid(f"hold reason must be one of {', '.join(HOLD_REASONS)}")
        if state not in (RAMPING, HELD):
            raise TransitionInvalid(f"only a ramping segment can be held (it is {state})")
        return Position(HELD, position.stage, hold_reason)
    raise TransitionInvalid(f"unknown action {action!r}")


def restarts_stage(before: Position, after: Position) -> bool:
    """Whether the evidence and the stage clock start over.

    A new stage always does (docs/guardrails.md: stages with different splits are never pooled). So
    does resuming a hold for SRM or timeout: the data was suspect, or a person looked and
    chose to keep watching for a full stage. Resuming a pause, or a no-data hold, continues.
    """
    if after.state == ROLLED_BACK or after.state == PAUSED or after.state == HELD:
        return False
    if before.state in (PENDING, ROLLED_BACK) or after.stage != before.stage:
        return True
    return before.state == HELD and before.hold_reason in (HOLD_SRM, HOLD_TIMEOUT)
