"""Rollouts in the engine: per-segment percentages, sticky buckets, arms, rollback isolation."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.engine.document import snapshot_from_document
from rollout.engine.evaluate import evaluate
from rollout.engine.hashing import normalized

RUNGS = [
    {
        "key": "edge",
        "requirements": [{"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"}],
    },
    {
        "key": "cloud",
        "requirements": [{"contextName": "rttMs", "operator": "NUM_LTE", "value": "300"}],
    },
    {"key": "lite"},
    {"key": "off"},
]
# One feature (log2 of memory): 2 GB -> small, 8 GB -> mid, 32 GB -> big.
MODEL = {
    "spec": [{"name": "memory", "source": "memoryGb", "transform": "log2", "clip": [0.5, 64]}],
    "means": [0.0],
    "scales": [1.0],
    "weights": [1.0],
    "keys": ["small", "mid", "big"],
    "centroids": [[1.0], [3.0], [5.0]],
}
MEMORY = {"small": 2, "mid": 8, "big": 32}
SEGMENTS = list(MEMORY)


def _snapshot(segments: dict[str, dict[str, Any]], target: str = "edge") -> Any:
    return snapshot_from_document(
        {
            "capabilityModel": MODEL,
            "flags": [
                {
                    "key": "smart-compose",
                    "kind": "string",
                    "enabled": True,
                    "ladder": {
                        "rungs": RUNGS,
                        "baseline": "lite",
                        "safe": "lite",
                        "rollout": {"target": target, "segments": segments},
                    },
                }
            ],
        }
    )


def _stage(percentage: int, state: str = "ramping", stage: int = 0) -> dict[str, Any]:
    return {"percentage": percentage, "state": state, "stage": stage}


def _decide(snapshot: Any, key: str, segment: str = "big") -> Any:
    context = {"targetingKey": key, "memoryGb": MEMORY[segment], "rttMs": 40}
    return evaluate(snapshot, "smart-compose", context)


def test_rollout__pending__everyone_control_on_baseline() -> None:
    decision = _decide(_snapshot({"big": _stage(0, "pending")}), "u-1")

    assert decision.variant == "lite"
    assert decision.metadata["arm"] == "control"
    assert decision.metadata["rolloutState"] == "pending"


def test_rollout__complete__everyone_treatment_best_rung_met() -> None:
    decision = _decide(_snapshot({"big": _stage(100, "complete", 4)}), "u-1")

    assert (decision.variant, decision.metadata["arm"]) == ("edge", "treatment")
    assert decision.reason == "TARGETING_MATCH"


def test_rollout__partial__bucket_decides_arm_reason_split() -> None:
    snapshot = _snapshot({"big": _stage(25)})
    keys = [f"user-{i}" for i in range(2000)]

    decisions = [_decide(snapshot, key) for key in keys]

    treated = [d for d in decisions if d.metadata["arm"] == "treatment"]
    assert {d.variant for d in treated} == {"edge"}
    assert {d.variant for d in decisions if d.metadata["arm"] == "control"} == {"lite"}
    assert 0.21 < len(treated) / len(keys) < 0.29
    assert {d.reason for d in decisions} == {"SPLIT"}
    # The bucket is Unleash's normalized(targetingKey, flagKey): 1..percentage is treatment.
    assert all(
        (normalized(key, "smart-compose") <= 25) == (d.metadata["arm"] == "treatment")
        for key, d in zip(keys, decisions, strict=True)
    )


def test_rollout__no_targeting_key__control() -> None:
    snapshot = _snapshot({"big": _stage(100, "complete")})

    decision = evaluate(snapshot, "smart-compose", {"memoryGb": 32, "rttMs": 40})

    assert (decision.variant, decision.metadata["arm"]) == ("lite", "control")


def test_rollout__segment_outside_plan__baseline_not_measured() -> None:
    decision = _decide(_snapshot({"big": _stage(100, "complete")}), "u-1", segment="mid")

    assert decision.variant == "lite"
    assert "arm" not in decision.metadata


def test_rollout__target_cloud__treatment_never_above_it() -> None:
    decision = _decide(_snapshot({"big": _stage(100, "complete")}, target="cloud"), "u-1")

    assert (decision.variant, decision.metadata["arm"]) == ("cloud", "treatment")


@given(
    key=st.text(min_size=1, max_size=20),
    stages=st.lists(st.integers(1, 100), min_size=2, max_size=5, unique=True).map(sorted),
)
@settings(max_examples=300)
def test_rollout__property__buckets_sticky_across_stages(key, stages) -> None:
    arms = [
        _decide(_snapshot({"big": _stage(p, stage=i)}), key).metadata["arm"]
        for i, p in enumerate(stages)
    ]

    # Once in treatment, a client stays in treatment at every later (larger) stage.
    first = arms.index("treatment") if "treatment" in arms else len(arms)
    assert all(arm == "treatment" for arm in arms[first:])


states = st.sampled_from(["pending", "ramping", "paused", "held", "complete", "rolled_back"])
segment_states = st.fixed_dictionaries(
    {s: st.tuples(states, st.integers(0, 100)) for s in SEGMENTS}
)


@given(
    plan=segment_states,
    rolled_back=st.sampled_from(SEGMENTS),
    keys=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=20),
)
@settings(max_examples=200)
def test_rollout__property__rolling_back_one_segment_leaves_others_alone(
    plan, rolled_back, keys
) -> None:
    def entry(state: str, percentage: int) -> dict[str, Any]:
        return _stage(0 if state in ("pending", "rolled_back") else percentage, state)

    before = _snapshot({s: entry(*plan[s]) for s in SEGMENTS})
    after = _snapshot(
        {s: entry("rolled_back", 0) if s == rolled_back else entry(*plan[s]) for s in SEGMENTS}
    )

    for segment in SEGMENTS:
        for key in keys:
            old, new = _decide(before, key, segment), _decide(after, key, segment)
            if segment == rolled_back:
                assert (new.variant, new.metadata["arm"]) == ("lite", "control")
            else:
                assert old == new
