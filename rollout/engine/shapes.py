"""Definitions <-> their JSON shapes: the snapshot document, and the rows' JSON fields.

constraint = {"contextName", "operator", "values"? | "value"?, "inverted"?, "caseInsensitive"?}
    (the same shape as Unleash's)
variant    = {"name", "weight", "value"?, "payloadType"?, "stickiness"?,
              "overrides"?: [{"contextName", "values"}]}
rule       = {"strategy", "parameters": {str: str}, "constraints": [constraint],
              "segments": [segment id], "variants": [variant]}
dependency = {"feature", "enabled"?, "variants"?}
flag       = {"key", "kind", "enabled", "offValue", "description"?, "variants": [variant],
              "dependencies": [dependency], "rules": [rule], "ladder"?: see ladder.py}
segment    = {"id", "key", "constraints": [constraint]}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rollout.engine.context import as_text
from rollout.engine.model import (
    LIST_OPERATORS,
    ConstraintDef,
    DependencyDef,
    FlagDef,
    RuleDef,
    SegmentDef,
    VariantDef,
)


def _texts(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, (list, tuple)):
        return ()
    return tuple(text for text in (as_text(item) for item in raw) if text is not None)


def _list(raw: Any) -> Iterable[Any]:
    return raw if isinstance(raw, (list, tuple)) else ()


def payload_type_of(value: Any) -> str:
    """The Unleash payload type that carries `value`."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"
    return "json"


def constraint_from_json(raw: Mapping[str, Any]) -> ConstraintDef:
    """A constraint from its JSON shape (numbers and booleans become their text)."""
    return ConstraintDef(
        context_name=as_text(raw.get("contextName")) or "",
        operator=as_text(raw.get("operator")) or "",
        values=_texts(raw.get("values")),
        value=as_text(raw.get("value")),
        inverted=raw.get("inverted") is True,
        case_insensitive=raw.get("caseInsensitive") is True,
    )


def constraint_to_json(constraint: ConstraintDef) -> dict[str, Any]:
    """A constraint in its JSON shape."""
    shape: dict[str, Any] = {
        "contextName": constraint.context_name,
        "operator": constraint.operator,
    }
    if constraint.operator in LIST_OPERATORS or constraint.values:
        shape["values"] = list(constraint.values)
    if constraint.value is not None:
        shape["value"] = constraint.value
    shape["inverted"] = constraint.inverted
    shape["caseInsensitive"] = constraint.case_insensitive
    return shape


def variant_from_json(raw: Mapping[str, Any]) -> VariantDef:
    """A variant from its JSON shape; a `value` without `payloadType` gets one by its type."""
    has_value = "value" in raw
    value = raw.get("value")
    payload_type = (
        (as_text(raw.get("payloadType")) or payload_type_of(value)) if has_value else None
    )
    return VariantDef(
        name=as_text(raw.get("name")) or "",
        weight=int(raw.get("weight", 0)),
        value=value,
        payload_type=payload_type,
        stickiness=as_text(raw.get("stickiness")) or None,
        overrides=tuple(
            (as_text(o.get("contextName")) or "", _texts(o.get("values")))
            for o in _list(raw.get("overrides"))
            if isinstance(o, Mapping)
        ),
    )


def variant_to_json(variant: VariantDef) -> dict[str, Any]:
    """A variant in its JSON shape."""
    shape: dict[str, Any] = {"name": variant.name, "weight": variant.weight}
    if variant.payload_type is not None:
        shape["value"] = variant.value
        shape["payloadType"] = variant.payload_type
    if variant.stickiness:
        shape["stickiness"] = variant.stickiness
    if variant.overrides:
        shape["overrides"] = [
            {"contextName": name, "values": list(values)} for name, values in variant.overrides
        ]
    return shape


def rule_from_json(raw: Mapping[str, Any]) -> RuleDef:
    """A rule from its JSON shape (parameter values become text)."""
    parameters = raw.get("parameters")
    return RuleDef(
        strategy=as_text(raw.get("strategy")) or "",
        parameters=tuple(
            (str(name), text)
            for name, value in (parameters.items() if isinstance(parameters, Mapping) else ())
            if (text := as_text(value)) is not None
        ),
        constraints=tuple(
            constraint_from_json(c) for c in _list(raw.get("constraints")) if isinstance(c, Mapping)
        ),
        segments=tuple(int(s) for s in _list(raw.get("segments"))),
        variants=tuple(
            variant_from_json(v) for v in _list(raw.get("variants")) if isinstance(v, Mapping)
        ),
    )


def rule_to_json(rule: RuleDef) -> dict[str, Any]:
    """A rule in its JSON shape."""
    return {
        "strategy": rule.strategy,
        "parameters": dict(rule.parameters),
        "constraints": [constraint_to_json(c) for c in rule.constraints],
        "segments": list(rule.segments),
        "variants": [variant_to_json(v) for v in rule.variants],
    }


def dependency_from_json(raw: Mapping[str, Any]) -> DependencyDef:
    """A dependency from its JSON shape (Unleash's: `feature`, `enabled`, `variants`)."""
    return DependencyDef(
        flag_key=as_text(raw.get("feature")) or "",
        enabled=raw.get("enabled", True) is not False,
        variants=_texts(raw.get("variants")),
    )


def dependency_to_json(dependency: DependencyDef) -> dict[str, Any]:
    """A dependency in its JSON shape."""
    shape: dict[str, Any] = {"feature": dependency.flag_key, "enabled": dependency.enabled}
    if dependency.variants:
        shape["variants"] = list(dependency.variants)
    return shape


def flag_from_json(raw: Mapping[str, Any]) -> FlagDef:
    """A flag from its JSON shape."""
    kind = as_text(raw.get("kind")) or "boolean"
    ladder = raw.get("ladder")
    return FlagDef(
        key=str(raw["key"]),
        kind=kind,
        enabled=raw.get("enabled") is True,
        off_value=raw.get("offValue", False if kind == "boolean" else None),
        rules=tuple(rule_from_json(r) for r in _list(raw.get("rules")) if isinstance(r, Mapping)),
        variants=tuple(
            variant_from_json(v) for v in _list(raw.get("variants")) if isinstance(v, Mapping)
        ),
        dependencies=tuple(
            dependency_from_json(d)
            for d in _list(raw.get("dependencies"))
            if isinstance(d, Mapping)
        ),
        description=as_text(raw.get("description")) or "",
        ladder=ladder if isinstance(ladder, Mapping) and ladder else None,
    )


def flag_to_json(flag: FlagDef) -> dict[str, Any]:
    """A flag in its JSON shape."""
    shape: dict[str, Any] = {
        "key": flag.key,
        "kind": flag.kind,
        "description": flag.description,
        "enabled": flag.enabled,
        "offValue": flag.off_value,
        "variants": [variant_to_json(v) for v in flag.variants],
        "dependencies": [dependency_to_json(d) for d in flag.dependencies],
        "rules": [rule_to_json(r) for r in flag.rules],
    }
    if flag.ladder is not None:
        shape["ladder"] = dict(flag.ladder)
    return shape


def segment_from_json(raw: Mapping[str, Any]) -> SegmentDef:
    """A segment from its JSON shape (`key`, or Unleash's `name`)."""
    return SegmentDef(
        id=int(raw["id"]),
        name=as_text(raw.get("key")) or as_text(raw.get("name")) or "",
        constraints=tuple(
            constraint_from_json(c) for c in _list(raw.get("constraints")) if isinstance(c, Mapping)
        ),
    )


def segment_to_json(segment: SegmentDef) -> dict[str, Any]:
    """A segment in its JSON shape."""
    return {
        "id": segment.id,
        "key": segment.name,
        "constraints": [constraint_to_json(c) for c in segment.constraints],
    }
