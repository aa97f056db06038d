"""The Unleash converter: documents and delta events in, definitions and reports out."""

from __future__ import annotations

from rollout.engine import FlagDef, RuleDef, build_snapshot, evaluate
from rollout.engine.shapes import flag_from_json
from rollout.engine.unleash import (
    context_from_unleash,
    convert,
    encode_payload,
    from_unleash,
    to_unleash_variant,
)


def _feature(**fields: object) -> dict:
    return {"name": "f", "enabled": True, "strategies": [{"name": "default"}], **fields}


def test_from_unleash__strategy__kept_as_a_rule_with_its_parameters() -> None:
    strategy = {
        "name": "flexibleRollout",
        "parameters": {"rollout": 25, "stickiness": "default", "groupId": "g"},
        "constraints": [{"contextName": "plan", "operator": "IN", "values": ["pro"]}],
        "segments": [3],
    }
    document = {
        "features": [_feature(strategies=[strategy])],
        "segments": [{"id": 3, "constraints": []}],
    }

    [flag] = from_unleash(document).flags

    [rule] = flag.rules
    assert rule.strategy == "flexibleRollout"
    assert rule.parameters == (("rollout", "25"), ("stickiness", "default"), ("groupId", "g"))
    assert rule.constraints[0].values == ("pro",)
    assert rule.segments == (3,)


def test_from_unleash__payloads__decoded_by_type() -> None:
    variants = [
        {"name": "j", "weight": 1, "payload": {"type": "json", "value": '{"a": [1, 2]}'}},
        {"name": "n", "weight": 1, "payload": {"type": "number", "value": "1.5"}},
        {"name": "i", "weight": 1, "payload": {"type": "number", "value": "7"}},
        {"name": "c", "weight": 1, "payload": {"type": "csv", "value": "a,b"}},
        {"name": "none", "weight": 1},
    ]

    [flag] = from_unleash({"features": [_feature(variants=variants)]}).flags

    assert [(v.value, v.payload_type) for v in flag.variants] == [
        ({"a": [1, 2]}, "json"),
        (1.5, "number"),
        (7, "number"),
        ("a,b", "csv"),
        (None, None),
    ]


def test_from_unleash__payload_types__give_the_flag_kind() -> None:
    def kind(*types: str) -> str:
        variants = [{"name": t, "weight": 1, "payload": {"type": t, "value": "1"}} for t in types]
        return from_unleash({"features": [_feature(variants=variants)]}).flags[0].kind

    assert from_unleash({"features": [_feature()]}).flags[0].kind == "boolean"
    assert kind("json") == "object"
    assert kind("number") == "number"
    assert kind("string", "number") == "string"


def test_from_unleash__what_cannot_be_mapped__reported_with_its_place() -> None:
    document = {
        "features": [
            _feature(
                strategies=[{"name": "myCustom"}, {"name": "default", "segments": [9]}],
                variants=[{"name": "v", "weight": 1, "payload": {"type": "json", "value": "{"}}],
            )
        ]
    }

    unmapped = from_unleash(document).unmapped

    assert unmapped == (
        "f.strategies[0]: custom strategy 'myCustom' is not supported; it never matches",
        "f.strategies[1]: segment 9 is not in the export; never matches",
        "f.variants[0]: payload is not valid JSON; kept as a string",
    )


def test_from_unleash__delta_events__applied_in_order() -> None:
    events = [
        {
            "type": "hydration",
            "features": [_feature(name="a"), _feature(name="b")],
            "segments": [{"id": 1, "constraints": []}],
        },
        {"type": "feature-removed", "featureName": "a"},
        {"type": "feature-updated", "feature": _feature(name="b", enabled=False)},
        {"type": "segment-updated", "segment": {"id": 2, "name": "two", "constraints": []}},
        {"type": "segment-removed", "segmentId": 1},
        {"type": "mystery"},
    ]

    converted = from_unleash({"events": events})

    assert [(f.key, f.enabled) for f in converted.flags] == [("b", False)]
    assert [(s.id, s.name) for s in converted.segments] == [(2, "two")]
    assert converted.unmapped == ("events[5]: unknown event type 'mystery'; skipped",)


def test_convert__json_shapes__round_trip_to_the_same_definitions() -> None:
    document = {
        "features": [
            _feature(
                strategies=[
                    {
                        "name": "flexibleRollout",
                        "parameters": {"rollout": "40", "groupId": "g"},
                        "constraints": [
                            {
                                "contextName": "v",
                                "operator": "SEMVER_GT",
                                "value": "1.0.0",
                                "inverted": True,
                            }
                        ],
                        "variants": [{"name": "x", "weight": 2, "stickiness": "tenant"}],
                    }
                ],
                variants=[
                    {
                        "name": "o",
                        "weight": 1,
                        "payload": {"type": "json", "value": "[1]"},
                        "overrides": [{"contextName": "userId", "values": ["1"]}],
                    }
                ],
                dependencies=[{"feature": "p", "enabled": False, "variants": ["a"]}],
            )
        ]
    }

    [shape] = convert(document).flags

    assert flag_from_json(shape) == from_unleash(document).flags[0]


def test_context_from_unleash__user_id__becomes_targeting_key_and_properties_flatten() -> None:
    context = {
        "userId": "u1",
        "sessionId": "s1",
        "currentTime": "2024-01-01T00:00:00Z",
        "properties": {"plan": "pro", "gone": None, "userId": "shadow", "targetingKey": "t"},
    }

    assert context_from_unleash(context) == {
        "targetingKey": "u1",
        "sessionId": "s1",
        "currentTime": "2024-01-01T00:00:00Z",
        "plan": "pro",
    }


def test_context_from_unleash__user_id_only_in_properties__not_a_user_id() -> None:
    flag = FlagDef("f", rules=(RuleDef("userWithId", (("userIds", "u1"),)),))
    snapshot = build_snapshot(1, "t", [flag])

    decision = evaluate(snapshot, "f", context_from_unleash({"properties": {"userId": "u1"}}))

    assert not decision.enabled


def test_to_unleash_variant__enabled_flag_without_variants__disabled_variant() -> None:
    decision = evaluate(build_snapshot(1, "t", [FlagDef("f")]), "f", {})

    assert to_unleash_variant(decision) == {
        "name": "disabled",
        "enabled": False,
        "feature_enabled": True,
    }


def test_encode_payload__decoded_values__back_to_unleash_strings() -> None:
    assert encode_payload("number", 1.2) == {"type": "number", "value": "1.2"}
    assert encode_payload("number", 1) == {"type": "number", "value": "1"}
    assert encode_payload("json", {"a": 1}) == {"type": "json", "value": '{"a":1}'}
    assert encode_payload("string", "x") == {"type": "string", "value": "x"}
