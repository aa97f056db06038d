"""The per-segment state machine: every transition that applies, and those that do not."""

from __future__ import annotations

import pytest

from rollout.guardrails.states import Position, TransitionInvalid, restarts_stage, transition

STAGES = (1, 5, 25, 50, 100)


@pytest.mark.parametrize(
    ("before", "action", "after"),
    [
        (Position("pending"), "advance", Position("ramping", 0)),
        (Position("ramping", 0), "advance", Position("ramping", 1)),
        (Position("ramping", 3), "advance", Position("complete", 4)),  # 100 %: nobody left
        (Position("ramping", 2), "pause", Position("paused", 2)),
        (Position("paused", 2), "resume", Position("ramping", 2)),
        (Position("paused", 2), "advance", Position("ramping", 3)),
        (Position("ramping", 1), "rollback", Position("rolled_back", 1)),
        (Position("complete", 4), "rollback", Position("rolled_back", 4)),
        (Position("pending"), "rollback", Position("rolled_back", 0)),
        (Position("rolled_back", 3), "resume", Position("ramping", 0)),
        (Position("rolled_back", 3), "advance", Position("ramping", 0)),
        (Position("held", 1, "srm"), "resume", Position("ramping", 1)),
        (Position("held", 1, "timeout"), "pause", Position("paused", 1)),
        (Position("held", 1, "timeout"), "rollback", Position("rolled_back", 1)),
    ],
)
def test_transition__applies(before, action, after) -> None:
    assert transition(before, action, STAGES) == after


def test_transition__hold_keeps_stage_and_reason() -> None:
    assert transition(Position("ramping", 2), "hold", STAGES, "no_data") == Position(
        "held", 2, "no_data"
    )


@pytest.mark.parametrize(
    ("before", "action"),
    [
        (Position("rolled_back", 1), "rollback"),
        (Position("complete", 4), "advance"),
        (Position("complete", 4), "pause"),
        (Position("pending"), "pause"),
        (Position("ramping", 1), "resume"),
        (Position("pending"), "resume"),
        (Position("paused", 1), "hold"),
        (Position("ramping", 1), "explode"),
    ],
)
def test_transition__does_not_apply__raises(before, action) -> None:
    with pytest.raises(TransitionInvalid):
        transition(before, action, STAGES, "srm")


def test_transition__unknown_hold_reason__raises() -> None:
    with pytest.raises(TransitionInvalid, match="hold reason"):
        transition(Position("ramping", 1), "hold", STAGES, "bored")


def test_percentage__by_state() -> None:
    assert Position("pending").percentage(STAGES) == 0
    assert Position("rolled_back", 3).percentage(STAGES) == 0
    assert Position("paused", 2).percentage(STAGES) == 25  # a freeze, not a retreat
    assert Position("held", 1, "srm").percentage(STAGES) == 5
    assert Position("complete", 4).percentage(STAGES) == 100


@pytest.mark.parametrize(
    ("before", "after", "restarts"),
    [
        (Position("pending"), Position("ramping", 0), True),
        (Position("ramping", 0), Position("ramping", 1), True),
        (Position("paused", 1), Position("ramping", 1), False),
        (Position("held", 1, "no_data"), Position("ramping", 1), False),
        (Position("held", 1, "srm"), Position("ramping", 1), True),
        (Position("held", 1, "timeout"), Position("ramping", 1), True),
        (Position("ramping", 1), Position("paused", 1), False),
        (Position("rolled_back", 2), Position("ramping", 0), True),
    ],
)
def test_restarts_stage(before, after, restarts) -> None:
    assert restarts_stage(before, after) is restarts
