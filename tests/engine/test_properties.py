"""Properties of the engine that hold for every input (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.engine.document import snapshot_from_document
from rollout.engine.evaluate import evaluate

keys = st.text(min_size=1, max_size=40)
percentages = st.integers(min_value=0, max_value=100)


def _rollout_snapshot(percentage: int, constraints: list[Any] | None = None) -> Any:
    return snapshot_from_document(
        {
            "flags": [
                {
                    "key": "f",
                    "kind": "boolean",
                    "enabled": True,
                    "rules": [
                        {
                            "strategy": "flexibleRollout",
                            "parameters": {
                                "rollout": str(percentage),
                                "stickiness": "default",
                                "groupId": "f",
                            },
                            "constraints": constraints or [],
                        }
                    ],
                }
            ]
        }
    )


@given(key=keys, low=percentages, high=percentages)
@settings(max_examples=300)
def test_rollout__percentage_raised__nobody_who_was_in_drops_out(key, low, high) -> None:
    low, high = min(low, high), max(low, high)
    was_in = evaluate(_rollout_snapshot(low), "f", {"targetingKey": key}).enabled

    now_in = evaluate(_rollout_snapshot(high), "f", {"targetingKey": key}).enabled

    assert now_in or not was_in


@given(key=keys, percentage=percentages, plan=st.sampled_from(["free", "pro", "team"]))
@settings(max_examples=300)
def test_evaluate__same_input__same_answer(key, percentage, plan) -> None:
    constraints = [{"contextName": "plan", "operator": "IN", "values": ["pro", "team"]}]
    context = {"targetingKey": key, "plan": plan}

    answers = [evaluate(_rollout_snapshot(percentage, constraints), "f", context) for _ in range(3)]

    assert answers[0] == answers[1] == answers[2]


@given(weights=st.lists(st.integers(min_value=0, max_value=1000), min_size=2, max_size=5))
@settings(max_examples=40, deadline=None)
def test_variants__weights__shares_follow_weights(weights) -> None:
    if sum(weights) == 0:
        weights = [1, *weights[1:]]
    variants = [{"name": f"v{i}", "weight": w, "value": i} for i, w in enumerate(weights)]
    snapshot = snapshot_from_document(
        {"flags": [{"key": "f", "kind": "number", "enabled": True, "variants": variants}]}
    )
    n = 4000
    counts: dict[str, int] = {}
    for i in range(n):
        variant = evaluate(snapshot, "f", {"targetingKey": f"u{i}"}).variant
        counts[variant] = counts.get(variant, 0) + 1

    total = sum(weights)
    for i, weight in enumerate(weights):
        share = counts.get(f"v{i}", 0) / n
        if weight == 0:
            assert share == 0
        else:
            assert abs(share - weight / total) < 0.04, (weights, counts)
