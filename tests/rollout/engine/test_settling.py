"""No erratic rungs (rollout/engine/settling.py): settled rungs move only with probes, hold
within a tolerance, climb only when earned twice in a row, and never outlast a hint."""

from __future__ import annotations

import itertools
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.engine.context import Context
from rollout.engine.document import snapshot_from_document
from rollout.engine.evaluate import evaluate, settle_all
from rollout.engine.ladder import SETTLE_TOLERANCE, compile_ladder
from rollout.engine.settling import SETTLED_RUNGS, UPGRADE_PROBES, next_settled

LADDER = {
    "rungs": [
        {
            "key": "edge",
            "requirements": [
                {"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"},
                {"contextName": "benchmarkMs", "operator": "NUM_LTE", "value": "60"},
                {"contextName": "webgpu", "operator": "IN", "values": ["true"]},
            ],
        },
        {
            "key": "cloud",
            "requirements": [{"contextName": "rttMs", "operator": "NUM_LTE", "value": "300"}],
        },
        {"key": "lite"},
    ],
    "baseline": "lite",
    "safe": "lite",
}
PHONE = {"targetingKey": "p", "memoryGb": 2, "benchmarkMs": 500.0, "webgpu": False}
SNAPSHOT = snapshot_from_document(
    {"flags": [{"key": "compose", "kind": "string", "enabled": True, "ladder": LADDER}]}
)


def _next(previous: Any, **attributes: Any) -> dict[str, Any]:
    return next_settled(compile_ladder(LADDER), Context({**PHONE, **attributes}), previous)


def _served(state: Any, **attributes: Any) -> str:
    context = {**PHONE, **attributes, SETTLED_RUNGS: {"compose": state}}
    return evaluate(SNAPSHOT, "compose", context).variant


def test_first_probe__settles_on_the_best_rung_met() -> None:
    assert _next(None, rttMs=100) == {"rung": "cloud"}
    assert _next(None, rttMs=900) == {"rung": "lite"}
    assert _next({"rung": "no-such-rung"}, rttMs=100) == {"rung": "cloud"}


def test_upgrade__earned_by_consecutive_probes_only() -> None:
    first = _next({"rung": "lite"}, rttMs=100)
    assert first == {"rung": "lite", "pending": "cloud", "count": 1}
    assert _served(first, rttMs=100) == "lite"
    assert evaluate(
        SNAPSHOT, "compose", {**PHONE, "rttMs": 100, SETTLED_RUNGS: {"compose": first}}
    ).unmet == {
        "edge": ("memoryGb ≥ 4", "benchmarkMs ≤ 60", "webgpu in [true]"),
        "cloud": ("settled on lite: upgrade not yet earned",),
    }

    # A bad probe in between starts the count again.
    interrupted = _next(first, rttMs=900)
    assert interrupted == {"rung": "lite"}
    second = _next(first, rttMs=100)
    assert UPGRADE_PROBES == 2
    assert second == {"rung": "cloud"}
    assert _served(second, rttMs=100) == "cloud"


def test_settled_rung__holds_within_the_tolerance_drops_beyond_it() -> None:
    loosest = 300 * (1 + SETTLE_TOLERANCE)

    assert _next({"rung": "cloud"}, rttMs=loosest - 10) == {"rung": "cloud"}
    assert _served({"rung": "cloud"}, rttMs=loosest - 10) == "cloud"
    assert _next({"rung": "cloud"}, rttMs=loosest + 10) == {"rung": "lite"}
    # A client that has not settled on cloud gets no tolerance.
    assert _served({"rung": "lite"}, rttMs=400) == "lite"
    assert _served(None, rttMs=400) == "lite"


def test_hints__take_the_settled_rung_away_at_once() -> None:
    settled = {"rung": "cloud"}

    assert _served(settled, rttMs=100, online=False) == "lite"
    assert _served(settled, rttMs=100, saveData=True) == "lite"


def test_offline_alternative__served_cloud__names_the_rung_offline_gets() -> None:
    decision = evaluate(SNAPSHOT, "compose", {**PHONE, "rttMs": 100})

    assert decision.variant == "cloud"
    assert decision.offline is not None
    assert decision.offline.variant == "lite"
    assert (
        decision.offline.ui_state
        == evaluate(SNAPSHOT, "compose", {**PHONE, "rttMs": 100, "online": False}).ui_state
    )
    assert evaluate(SNAPSHOT, "compose", {**PHONE, "rttMs": 900}).offline is None


def test_settle_all__every_ladder_flag_and_nothing_else() -> None:
    states = settle_all(SNAPSHOT, {**PHONE, "rttMs": 100}, {"compose": {"rung": "lite"}})

    assert states == {"compose": {"rung": "lite", "pending": "cloud", "count": 1}}
    assert settle_all(SNAPSHOT, {**PHONE, "rttMs": 100}, "garbage") == {
        "compose": {"rung": "cloud"}
    }


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), centre=st.sampled_from([150.0, 300.0, 450.0]))
def test_property__jitter_of_50_percent__at_most_one_change_an_hour(
    seed: int, centre: float
) -> None:
    """A link whose RTT is anywhere within ±50 % of the threshold at every probe (one every
    5 minutes: 12 an hour), for 8 hours: the settled rung changes at most once in all."""
    rng = random.Random(seed)
    state: Any = None
    served = []
    for _ in range(12 * 8):
        rtt = 300 * rng.uniform(0.5, 1.5)
        state = _next(state, rttMs=rtt)
        served.append(_served(state, rttMs=rtt))
    changes = sum(a != b for a, b in itertools.pairwise(served))

    assert changes <= 1, served


@settings(max_examples=200, deadline=None)
@given(rtts=st.lists(st.floats(1, 3000), min_size=1, max_size=6), steady=st.floats(1, 3000))
def test_property__steady_link__served_what_it_meets_within_the_upgrade_probes(
    rtts: list[float], steady: float
) -> None:
    """Whatever came before, a link that stays put is served the rung it meets (or a rung it
    held within the tolerance) after UPGRADE_PROBES probes, and never a rung above it."""
    state: Any = None
    for rtt in rtts:
        state = _next(state, rttMs=rtt)
    for _ in range(UPGRADE_PROBES):
        state = _next(state, rttMs=steady)
    served = _served(state, rttMs=steady)
    strict = "cloud" if steady <= 300 else "lite"
    held_within = served == "cloud" and steady <= 300 * (1 + SETTLE_TOLERANCE)

    assert served == strict or held_within
