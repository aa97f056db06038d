"""Decisions beyond the Unleash suite: reasons, values, dependencies, evaluate_all."""

from __future__ import annotations

import random

import pytest

from rollout.engine import (
    ConstraintDef,
    DependencyDef,
    FlagDef,
    RuleDef,
    SegmentDef,
    VariantDef,
    build_snapshot,
    evaluate,
    evaluate_all,
    rollout_rule,
    snapshot_from_document,
)
from rollout.engine.context import Context
from tests.rollout.engine.builders import decide, snapshot_of

PRO = ConstraintDef("plan", "IN", ("pro",))
AB = (VariantDef("a", 1, "A", "string"), VariantDef("b", 1, "B", "string"))


def test_evaluate__unknown_flag__error_flag_not_found() -> None:
    decision = evaluate(snapshot_of(FlagDef("f")), "nope", {})

    assert (decision.reason, decision.error_code, decision.enabled) == (
        "ERROR",
        "FLAG_NOT_FOUND",
        False,
    )


def test_evaluate__flag_off__off_value_reason_disabled() -> None:
    decision = decide(FlagDef("f", kind="string", enabled=False, off_value="plain"))

    assert (decision.value, decision.reason, decision.variant) == ("plain", "DISABLED", "disabled")


def test_evaluate__no_rules__static_true() -> None:
    decision = decide(FlagDef("f"))

    assert (decision.value, decision.reason, decision.enabled) == (True, "STATIC", True)


def test_evaluate__targeting_rule__match_or_default_off_value() -> None:
    flag = FlagDef("f", rules=(RuleDef(constraints=(PRO,)),))

    assert decide(flag, {"plan": "pro"}).reason == "TARGETING_MATCH"
    free = decide(flag, {"plan": "free"})
    assert (free.value, free.reason, free.enabled) == (False, "DEFAULT", False)


def test_evaluate__partial_rollout__reason_split() -> None:
    flag = FlagDef("f", rules=(rollout_rule("f", 50),))

    reasons = {decide(flag, {"targetingKey": f"u{i}"}).reason for i in range(20)}

    assert reasons == {"SPLIT", "DEFAULT"}


def test_evaluate__full_rollout_as_first_rule__static() -> None:
    assert decide(FlagDef("f", rules=(rollout_rule("f", 100),))).reason == "STATIC"


def test_evaluate__catch_all_after_a_targeting_rule__targeting_match() -> None:
    flag = FlagDef("f", rules=(RuleDef(constraints=(PRO,)), RuleDef()))

    assert decide(flag, {"plan": "free"}).reason == "TARGETING_MATCH"


def test_evaluate__weighted_variants__payload_value_and_split() -> None:
    flag = FlagDef("f", kind="string", off_value="", rules=(rollout_rule("f", 100),), variants=AB)

    decision = decide(flag, {"targetingKey": "u"})

    assert decision.reason == "SPLIT"
    assert (decision.variant, decision.value) in {("a", "A"), ("b", "B")}
    assert decision.payload_type == "string"


def test_evaluate__variant_override__targeting_match() -> None:
    variants = (VariantDef("a", 1, "A", "string", overrides=(("plan", ("pro",)),)), AB[1])
    flag = FlagDef("f", kind="string", variants=variants)

    decision = decide(flag, {"targetingKey": "u", "plan": "pro"})

    assert (decision.variant, decision.reason) == ("a", "TARGETING_MATCH")


def test_evaluate__rule_variants__before_flag_variants_with_rule_group() -> None:
    only = (VariantDef("rule-variant", 1, {"mode": "x"}, "json"),)
    rule = RuleDef(constraints=(PRO,), variants=only)
    flag = FlagDef("f", kind="object", off_value=None, rules=(rule,), variants=AB)

    decision = decide(flag, {"plan": "pro"})

    assert (decision.variant, decision.value, decision.reason) == (
        "rule-variant",
        {"mode": "x"},
        "TARGETING_MATCH",
    )


@pytest.mark.parametrize(
    ("kind", "off_value", "expected"),
    [("boolean", False, True), ("string", "", "a"), ("number", 0, 0)],
)
def test_evaluate__variant_without_payload__value_by_kind(kind, off_value, expected) -> None:
    flag = FlagDef("f", kind=kind, off_value=off_value, variants=(VariantDef("a", 1),))

    decision = decide(flag, {"targetingKey": "u"})

    assert (decision.variant, decision.value, decision.payload_type) == ("a", expected, None)


def test_evaluate__no_stickiness_value__variant_drawn_from_injected_rng() -> None:
    flag = FlagDef("f", kind="string", variants=AB)
    snapshot = build_snapshot(1, "t", [flag], rng=random.Random(3))
    again = build_snapshot(1, "t", [flag], rng=random.Random(3))

    picks = [evaluate(snapshot, "f", {}).variant for _ in range(200)]

    assert picks == [evaluate(again, "f", {}).variant for _ in range(200)]
    assert set(picks) == {"a", "b"}


def test_evaluate__missing_segment__whole_flag_off_as_yggdrasil() -> None:
    flag = FlagDef("f", rules=(RuleDef(segments=(404,)), RuleDef()))

    decision = decide(flag)

    assert (decision.enabled, decision.reason) == (False, "DISABLED")
    assert decision.error_message == (
        "invalid definition: rules[0].segments[0]: segment 404 does not exist"
    )


def test_evaluate__segment__its_constraints_and_the_rules_must_all_hold() -> None:
    segment = SegmentDef(1, "beta", (ConstraintDef("email", "STR_ENDS_WITH", ("@acme.io",)),))
    flag = FlagDef("f", rules=(RuleDef(constraints=(PRO,), segments=(1,)),))

    assert decide(flag, {"plan": "pro", "email": "a@acme.io"}, segments=(segment,)).enabled
    assert not decide(flag, {"plan": "pro", "email": "a@x.io"}, segments=(segment,)).enabled
    assert not decide(flag, {"plan": "free", "email": "a@acme.io"}, segments=(segment,)).enabled


def test_evaluate__invalid_segment__referring_flags_off() -> None:
    segment = SegmentDef(1, "bad", (ConstraintDef("n", "NUM_LT", value="ten"),))
    flag = FlagDef("f", rules=(RuleDef(segments=(1,)),))

    decision = decide(flag, segments=(segment,))

    assert decision.reason == "DISABLED"
    assert "segment 1 is invalid" in (decision.error_message or "")


# --- dependencies --------------------------------------------------------------------------


def _with_parent(dependency: DependencyDef, context: dict | None = None) -> bool:
    parent = FlagDef("parent", kind="string", rules=(RuleDef(constraints=(PRO,)),), variants=AB)
    snapshot = snapshot_of(parent, FlagDef("child", dependencies=(dependency,)))
    return evaluate(snapshot, "child", context or {}).enabled


def test_dependency__parent_evaluated_with_child_context() -> None:
    assert _with_parent(DependencyDef("parent"), {"plan": "pro"})
    assert not _with_parent(DependencyDef("parent"), {"plan": "free"})


def test_dependency__expects_parent_off__satisfied_only_when_off() -> None:
    assert _with_parent(DependencyDef("parent", enabled=False), {"plan": "free"})
    assert not _with_parent(DependencyDef("parent", enabled=False), {"plan": "pro"})


def test_dependency__variants__parent_variant_must_be_listed() -> None:
    context = {"plan": "pro", "targetingKey": "u1"}
    parent_variant = evaluate(
        snapshot_of(FlagDef("parent", kind="string", variants=AB)), "parent", context
    ).variant
    other = "b" if parent_variant == "a" else "a"

    assert _with_parent(DependencyDef("parent", variants=(parent_variant,)), context)
    assert not _with_parent(DependencyDef("parent", variants=(other,)), context)


def test_dependency__chain__child_off_with_reason() -> None:
    snapshot = snapshot_of(
        FlagDef("a"),
        FlagDef("b", dependencies=(DependencyDef("a"),)),
        FlagDef("c", dependencies=(DependencyDef("b"),)),
    )

    assert evaluate(snapshot, "b", {}).enabled
    decision = evaluate(snapshot, "c", {})
    assert (decision.enabled, decision.reason) == (False, "DISABLED")
    assert snapshot.flags["c"].problems == (
        "dependencies[0].feature: flag 'b' has dependencies: one level only",
    )


def test_dependency__satisfied__reason_targeting_match_not_static() -> None:
    snapshot = snapshot_of(FlagDef("a"), FlagDef("b", dependencies=(DependencyDef("a"),)))

    assert evaluate(snapshot, "b", {}).reason == "TARGETING_MATCH"


# --- evaluate_all, contexts, snapshot documents ----------------------------------------------


def test_evaluate_all__listed_keys__in_order_with_unknown_as_error() -> None:
    decisions = evaluate_all(snapshot_of(FlagDef("f"), FlagDef("g")), {}, ["nope", "g"])

    assert [d.flag_key for d in decisions] == ["nope", "g"]
    assert decisions[0].error_code == "FLAG_NOT_FOUND"


def test_evaluate_all__no_keys__every_flag_in_snapshot_order() -> None:
    snapshot = snapshot_of(FlagDef("z"), FlagDef("a", enabled=False))

    decisions = evaluate_all(snapshot, {})

    assert [(d.flag_key, d.enabled) for d in decisions] == [("z", True), ("a", False)]


def test_evaluate__same_outcome__same_prebuilt_decision_object() -> None:
    snapshot = snapshot_of(FlagDef("f", rules=(RuleDef(constraints=(PRO,)),)))

    assert evaluate(snapshot, "f", {"plan": "pro"}) is evaluate(snapshot, "f", {"plan": "pro"})


def test_context__user_id__falls_back_to_targeting_key() -> None:
    assert Context({"targetingKey": "t"}).get("userId") == "t"
    assert Context({"targetingKey": "t", "userId": "u"}).get("userId") == "u"
    assert Context({"targetingKey": "t"}).get("sessionId") is None


def test_snapshot_from_document__json_flags__same_decisions_as_definitions() -> None:
    document = {
        "version": 4,
        "environment": "production",
        "segments": [
            {
                "id": 1,
                "key": "pros",
                "constraints": [{"contextName": "plan", "operator": "IN", "values": ["pro"]}],
            }
        ],
        "flags": [
            {
                "key": "f",
                "kind": "string",
                "enabled": True,
                "offValue": "off",
                "variants": [{"name": "a", "weight": 1, "value": "A"}],
                "rules": [{"strategy": "default", "segments": [1]}],
            }
        ],
    }

    snapshot = snapshot_from_document(document)

    assert (snapshot.version, snapshot.environment) == (4, "production")
    on = evaluate(snapshot, "f", {"plan": "pro"})
    assert (on.value, on.variant, on.payload_type) == ("A", "a", "string")
    assert evaluate(snapshot, "f", {"plan": "free"}).value == "off"
