"""Engine decisions beyond the Unleash suite: reasons, values, validation messages."""

from __future__ import annotations

from rollout.engine.constraints import validate_constraint
from rollout.engine.context import Context
from rollout.engine.document import snapshot_from_document, validate_variants
from rollout.engine.evaluate import evaluate, evaluate_all


def _snapshot(**flag: object) -> object:
    return snapshot_from_document({"version": 3, "flags": [{"key": "f", **flag}]})


def test_evaluate__unknown_flag__error_flag_not_found() -> None:
    decision = evaluate(_snapshot(enabled=True), "nope", {})

    assert decision.reason == "ERROR"
    assert decision.error_code == "FLAG_NOT_FOUND"


def test_evaluate__disabled__off_value_reason_disabled() -> None:
    decision = evaluate(_snapshot(kind="string", enabled=False, offValue="plain"), "f", {})

    assert (decision.value, decision.reason, decision.variant) == ("plain", "DISABLED", "disabled")


def test_evaluate__no_rules__static_true() -> None:
    decision = evaluate(_snapshot(enabled=True), "f", {})

    assert (decision.value, decision.reason) == (True, "STATIC")


def test_evaluate__rule_not_matched__default_off_value() -> None:
    rule = {
        "strategy": "default",
        "constraints": [{"contextName": "region", "operator": "IN", "values": ["eu"]}],
    }
    snapshot = _snapshot(enabled=True, rules=[rule])

    assert evaluate(snapshot, "f", {"region": "us"}).reason == "DEFAULT"
    assert evaluate(snapshot, "f", {"region": "eu"}).reason == "TARGETING_MATCH"


def test_evaluate__invalid_definition__error_never_on() -> None:
    rule = {
        "strategy": "default",
        "constraints": [{"contextName": "n", "operator": "NUM_GT", "value": "abc"}],
    }

    decision = evaluate(_snapshot(enabled=True, rules=[rule]), "f", {"n": "5"})

    assert decision.enabled is False
    assert decision.reason == "ERROR"


def test_context__numbers_and_booleans__compared_as_unleash_strings() -> None:
    ctx = Context({"a": 2.0, "b": 2, "c": True, "d": 1.5, "e": None, "f": [1]})

    assert [ctx.get(n) for n in "abcdef"] == ["2", "2", "true", "1.5", None, None]


def test_context__user_id__falls_back_to_targeting_key() -> None:
    assert Context({"targetingKey": "t"}).get("userId") == "t"
    assert Context({"targetingKey": "t", "userId": "u"}).get("userId") == "u"


def test_validate_constraint__bad_values__messages_name_the_field() -> None:
    assert validate_constraint(
        {"contextName": "n", "operator": "NUM_GT", "value": "1e"}, "constraints[0]"
    ) == ["constraints[0].value: '1e' is not a number"]
    assert validate_constraint(
        {"contextName": "n", "operator": "LIKE", "values": []}, "constraints[1]"
    ) == ["constraints[1].operator: unknown operator 'LIKE'"]
    assert validate_constraint(
        {"contextName": "v", "operator": "SEMVER_GT", "value": "1.2"}, "c"
    ) == ["c.value: '1.2' is not a semantic version like 1.2.3"]
    assert validate_constraint(
        {"contextName": "d", "operator": "DATE_AFTER", "value": "2024-01-01"}, "c"
    ) == ["c.value: '2024-01-01' is not a date like 2026-01-31T12:00:00Z"]
    assert (
        "not a valid RE2"
        in validate_constraint({"contextName": "r", "operator": "REGEX", "value": "(a)\\1"}, "c")[0]
    )


def test_validate_variants__zero_total_weight__rejected() -> None:
    errors = validate_variants([{"name": "a", "weight": 0}], "variants")

    assert errors == ["variants: the weights add up to 0; give at least one a weight"]


def test_evaluate_all__listed_keys__in_order_with_unknown_as_error() -> None:
    snapshot = _snapshot(enabled=True)

    decisions = evaluate_all(snapshot, {}, ["nope", "f"])

    assert [d.flag_key for d in decisions] == ["nope", "f"]
    assert decisions[0].error_code == "FLAG_NOT_FOUND"


def test_evaluate__rule_matched_flag_variants_split__reason_split() -> None:
    variants = [{"name": "a", "weight": 1, "value": "A"}, {"name": "b", "weight": 1, "value": "B"}]
    snapshot = _snapshot(
        kind="string",
        enabled=True,
        variants=variants,
        rules=[{"strategy": "flexibleRollout", "parameters": {"rollout": "100"}}],
    )

    assert evaluate(snapshot, "f", {"targetingKey": "u"}).reason == "SPLIT"
