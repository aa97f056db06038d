"""Validation before save: every problem names its field (docs/bucketing.md)."""

import pytest

from rollout.engine import (
    ConstraintDef,
    DependencyDef,
    FlagDef,
    RuleDef,
    SegmentDef,
    VariantDef,
    rollout_rule,
    validate_constraint,
    validate_flag,
    validate_segment,
)
from rollout.engine.document import validate_constraints, validate_rule, validate_variants


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        (
            ConstraintDef("n", "NUM_GT", value="abc"),
            "constraints[0].value: 'abc' is not a number",
        ),
        (ConstraintDef("n", "NUM_GT"), "constraints[0].value: required for NUM_GT"),
        (
            ConstraintDef("d", "DATE_AFTER", value="2024-01-01"),
            "constraints[0].value: '2024-01-01' is not a date like 2026-01-31T12:00:00Z",
        ),
        (
            ConstraintDef("v", "SEMVER_GT", value="1.2"),
            "constraints[0].value: '1.2' is not a semantic version like 1.2.3",
        ),
        (
            ConstraintDef("v", "SEMVER_GT", value="v1.2.3"),
            "constraints[0].value: 'v1.2.3' is not a semantic version like 1.2.3",
        ),
        (ConstraintDef("x", "LIKE", ("a",)), "constraints[0].operator: unknown operator 'LIKE'"),
        (
            ConstraintDef("ip", "IN_CIDR", ("10.0.0.0/8", "10.invalid")),
            "constraints[0].values[1]: '10.invalid' is not an IP address or CIDR range",
        ),
        (ConstraintDef("", "IN", ("a",)), "constraints[0].contextName: required"),
    ],
)
def test_validate_constraint__bad_definition__message_names_the_field(constraint, expected):
    assert validate_constraint(constraint, "constraints[0]") == [expected]


def test_validate_constraint__look_ahead_regex__rejected_with_re2_reason() -> None:
    [error] = validate_constraint(ConstraintDef("r", "REGEX", value="^(?=a)b$"), "c")

    assert error.startswith("c.value: '^(?=a)b$' is not a valid RE2 expression (")


def test_validate_constraint__valid__no_problems() -> None:
    assert validate_constraint(ConstraintDef("plan", "IN", ("pro",))) == []


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (rollout_rule("f", 101), "rules[0].parameters.rollout: 101 is above 100"),
        (
            RuleDef("flexibleRollout", (("rollout", "5.5"),)),
            "rules[0].parameters.rollout: must be a whole number 0..100",
        ),
        (RuleDef("flexibleRollout"), "rules[0].parameters.rollout: required"),
        (
            RuleDef("gradualRolloutUserId", (("percentage", "5"),)),
            "rules[0].parameters.groupId: required",
        ),
        (RuleDef("custom"), "rules[0].strategy: unknown strategy 'custom'"),
        (RuleDef(segments=(9,)), "rules[0].segments[0]: segment 9 does not exist"),
    ],
)
def test_validate_flag__bad_rule__message_names_the_field(rule, expected) -> None:
    assert validate_flag(FlagDef("f", rules=(rule,)), segment_ids={1}) == [expected]


@pytest.mark.parametrize(
    ("variants", "expected"),
    [
        (
            (VariantDef("a", 0), VariantDef("b", 0)),
            "variants: the weights add up to 0; give at least one a weight",
        ),
        (
            (VariantDef("a", -1), VariantDef("b", 5)),
            "variants[0].weight: must be a whole number ≥ 0",
        ),
        ((VariantDef("a", 1), VariantDef("a", 1)), "variants[1].name: 'a' is used twice"),
        ((VariantDef("disabled", 1),), "variants[0].name: 'disabled' means no variant"),
    ],
)
def test_validate_flag__bad_variants__message_names_the_field(variants, expected) -> None:
    assert validate_flag(FlagDef("f", variants=variants)) == [expected]


def test_validate_flag__nested_constraint__full_path() -> None:
    rule = RuleDef(
        constraints=(ConstraintDef("plan", "IN"), ConstraintDef("n", "NUM_EQ", value="x"))
    )

    assert validate_flag(FlagDef("f", rules=(rule,))) == [
        "rules[0].constraints[1].value: 'x' is not a number"
    ]


def test_validate_flag__kind_and_off_value__checked() -> None:
    assert validate_flag(FlagDef("f", kind="colour")) == [
        "kind: must be one of boolean, number, object, string"
    ]
    assert validate_flag(FlagDef("f", kind="number", off_value="0")) == [
        "offValue: must be a number value for a number flag"
    ]


def test_validate_flag__dependencies__one_level_of_existing_flags() -> None:
    parent = FlagDef("parent", dependencies=(DependencyDef("grandparent"),))
    child = FlagDef("child", dependencies=(DependencyDef("parent"), DependencyDef("ghost")))
    flags = {"parent": parent, "child": child, "grandparent": FlagDef("grandparent")}

    assert validate_flag(child, flags=flags) == [
        "dependencies[0].feature: flag 'parent' has dependencies: one level only",
        "dependencies[1].feature: flag 'ghost' does not exist",
    ]


def test_validate_segment__bad_constraint__message_names_the_field() -> None:
    segment = SegmentDef(1, "beta", (ConstraintDef("v", "SEMVER_EQ", value="1"),))

    assert validate_segment(segment) == [
        "constraints[0].value: '1' is not a semantic version like 1.2.3"
    ]


# --- the JSON validators the Django models call ----------------------------------------------


def test_validate_constraints__json_shapes__checked_then_validated() -> None:
    raw = [
        {"contextName": "n", "operator": "NUM_GT", "value": "1e"},
        {"contextName": "x", "operator": "IN", "values": "pro"},
        "not an object",
        {"contextName": "x", "operator": "IN", "values": [], "inverted": "yes"},
    ]

    assert validate_constraints(raw, "constraints") == [
        "constraints[0].value: '1e' is not a number",
        "constraints[1].values: must be a list of strings",
        "constraints[2]: must be an object",
        "constraints[3].inverted: must be true or false",
    ]


def test_validate_variants__json_zero_total__rejected() -> None:
    errors = validate_variants([{"name": "a", "weight": 0}], "variants")

    assert errors == ["variants: the weights add up to 0; give at least one a weight"]


def test_validate_variants__json_value_without_payload_type__accepted() -> None:
    assert validate_variants([{"name": "a", "weight": 1, "value": {"k": 1}}], "variants") == []


def test_validate_rule__rollout_kept_outside_parameters__not_required() -> None:
    assert validate_rule("flexibleRollout", {}, "strategy") == []
    assert validate_rule("flexibleRollout", {"rollout": "150"}, "strategy") == [
        "strategy.parameters.rollout: 150 is above 100"
    ]
    assert validate_rule("nope", {}, "strategy") == ["strategy.strategy: unknown strategy 'nope'"]
