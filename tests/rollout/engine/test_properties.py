"""Properties of the engine that hold for every input (hypothesis)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.engine import (
    ConstraintDef,
    FlagDef,
    VariantDef,
    build_snapshot,
    evaluate,
    evaluate_all,
    rollout_rule,
)
from rollout.engine.hashing import normalized

keys = st.text(min_size=1, max_size=40)
percentages = st.integers(min_value=0, max_value=100)
PAYING = ConstraintDef("plan", "IN", ("pro", "team"))


def _rollout(percentage: int, *constraints: ConstraintDef) -> FlagDef:
    return FlagDef("f", rules=(rollout_rule("f", percentage, constraints=constraints),))


@given(key=keys, low=percentages, high=percentages)
@settings(max_examples=300)
def test_rollout__percentage_raised__nobody_who_was_in_drops_out(key, low, high) -> None:
    low, high = min(low, high), max(low, high)
    before = build_snapshot(1, "t", [_rollout(low)])
    after = build_snapshot(2, "t", [_rollout(high)])

    was_in = evaluate(before, "f", {"targetingKey": key}).enabled
    now_in = evaluate(after, "f", {"targetingKey": key}).enabled

    assert now_in or not was_in


def test_rollout__every_percentage__exactly_the_clients_bucketed_at_or_below_it() -> None:
    clients = [f"client-{i}" for i in range(2000)]
    buckets = [normalized(c, "f") for c in clients]
    for percentage in range(0, 101, 5):
        snapshot = build_snapshot(1, "t", [_rollout(percentage)])

        included = [evaluate(snapshot, "f", {"targetingKey": c}).enabled for c in clients]

        assert included == [b <= percentage for b in buckets]


@given(key=keys, percentage=percentages, plan=st.sampled_from(["free", "pro", "team"]))
@settings(max_examples=300)
def test_evaluate__same_input__same_answer(key, percentage, plan) -> None:
    variants = (VariantDef("a", 3, "A", "string"), VariantDef("b", 1, "B", "string"))
    flags = [
        _rollout(percentage, PAYING),
        FlagDef("g", kind="string", rules=(rollout_rule("g", percentage),), variants=variants),
    ]
    context = {"targetingKey": key, "plan": plan}

    # Separate snapshots, as separate processes hold: nothing but the input may matter.
    answers = [evaluate_all(build_snapshot(1, "t", flags), context) for _ in range(3)]

    assert answers[0] == answers[1] == answers[2]


@given(weights=st.lists(st.integers(min_value=0, max_value=1000), min_size=2, max_size=5))
@settings(max_examples=40, deadline=None)
def test_variants__weights__shares_follow_weights(weights) -> None:
    if sum(weights) == 0:
        weights = [1, *weights[1:]]
    variants = tuple(VariantDef(f"v{i}", w, i, "number") for i, w in enumerate(weights))
    snapshot = build_snapshot(1, "t", [FlagDef("f", kind="number", variants=variants)])
    n = 4000

    counts = Counter(evaluate(snapshot, "f", {"targetingKey": f"u{i}"}).variant for i in range(n))

    total = sum(weights)
    for i, weight in enumerate(weights):
        share = counts[f"v{i}"] / n
        if weight == 0:
            assert share == 0
        else:
            # ±0.04 is five standard deviations of a share at n = 4000
            assert abs(share - weight / total) < 0.04, (weights, counts)


_SPLIT_VARIANTS = (VariantDef("a", 3, "A", "string"), VariantDef("b", 1, "B", "string"))
_CONTEXTS = st.fixed_dictionaries(
    {},
    optional={
        "targetingKey": keys,
        "sessionId": keys,
        "plan": st.sampled_from(["free", "pro", "team"]),
    },
)


@given(context=_CONTEXTS, percentage=percentages)
@settings(max_examples=300)
def test_strict__any_context__one_answer_and_unleashs_whenever_there_is_a_key(
    context, percentage
) -> None:
    flags = [
        _rollout(percentage),
        FlagDef("g", kind="string", rules=(rollout_rule("g", 100),), variants=_SPLIT_VARIANTS),
    ]
    snapshot = build_snapshot(1, "t", flags)

    first = evaluate_all(snapshot, context, strict=True)
    again = evaluate_all(snapshot, context, strict=True)

    assert first == again  # no draw: the same request, the same answer
    sticky = "targetingKey" in context or "sessionId" in context
    if sticky:
        assert first == evaluate_all(snapshot, context)  # Unleash's answer, unchanged
    else:
        split = [d for d in first if d.error_code == "TARGETING_KEY_MISSING"]
        assert {d.flag_key for d in split} == ({"f", "g"} if 0 < percentage < 100 else {"g"})
        assert all(d.reason == "ERROR" and not d.enabled for d in split)
