"""The snapshot document (JSON, as published and downloaded) and its compilation.

Document, schema 1:
    {"schema": 1, "environment": str, "version": int,
     "segments": [{"id": int, "key": str, "constraints": [constraint]}],
     "flags": [{"key", "kind", "enabled", "offValue",
                "variants": [variant], "dependencies": [{"feature", "enabled"?, "variants"?}],
                "rules": [{"strategy", "parameters": {str: str}, "constraints": [constraint],
                           "segments": [segment id], "variants": [variant]}]}]}
    constraint = {"contextName", "operator", "values"? | "value"?, "inverted"?, "caseInsensitive"?}
    variant = {"name", "weight", "value"?, "payloadType"?, "stickiness"?,
               "overrides"?: [{"contextName", "values"}]}
    flag, optional: "ladder": {"rungs": [{"key", "value", "uiState", "requirements": [constraint],
              "runsOn": "device"|"cloud"|"none"}], "baseline": key, "safe": key,
              "availableSegments": [segment key or "*"]}
    optional: "capabilityModel": the segmentation model artifact (segments/ml), and
              "segmentLabels": {segment key: readable label}
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from rollout.engine.capability import CapabilityModel
from rollout.engine.constraints import (
    InvalidDefinition,
    Predicate,
    compile_constraint,
    validate_constraint,
)
from rollout.engine.ladder import compile_ladder
from rollout.engine.strategies import STRATEGIES, all_of, compile_strategy, parse_percentage
from rollout.engine.types import (
    SPLIT,
    STATIC,
    TARGETING_MATCH,
    Dependency,
    Flag,
    Rule,
    Snapshot,
    Variant,
    VariantSet,
)

KINDS = frozenset({"boolean", "string", "number", "object"})


def _never(ctx: Any) -> bool:
    return False


def _variant_set(raw: list[Mapping[str, Any]], group_id: str, stickiness: str) -> VariantSet | None:
    if not raw:
        return None
    variants = tuple(
        Variant(
            name=str(v["name"]),
            weight=int(v.get("weight", 0)),
            has_value="value" in v,
            value=v.get("value"),
            payload_type=v.get("payloadType"),
            stickiness=v.get("stickiness"),
            overrides=tuple(
                (str(o["contextName"]), frozenset(str(x) for x in o.get("values") or []))
                for o in v.get("overrides") or []
            ),
        )
        for v in raw
    )
    return VariantSet(
        variants=variants,
        group_id=group_id,
        stickiness=stickiness,
        total_weight=sum(v.weight for v in variants),
        with_overrides=any(v.overrides for v in variants),
    )


def _rule(
    raw: Mapping[str, Any],
    flag_key: str,
    segments: Mapping[int, tuple[Predicate, ...]],
    rng: random.Random,
) -> Rule:
    name = str(raw.get("strategy", ""))
    parameters = {str(k): str(v) for k, v in (raw.get("parameters") or {}).items()}
    strategy, is_split = compile_strategy(name, parameters, flag_key, rng)
    constraints = [compile_constraint(c) for c in raw.get("constraints") or []]
    for segment_id in raw.get("segments") or []:
        if segment_id not in segments:
            constraints = [_never]  # a missing segment: the rule never matches
            break
        constraints.extend(segments[segment_id])
    variants = _variant_set(
        list(raw.get("variants") or []),
        parameters.get("groupId") or flag_key,
        parameters.get("stickiness") or "default",
    )
    if is_split or (variants is not None and len(variants.variants) > 1):
        reason = SPLIT
    elif constraints or name != "default":
        reason = TARGETING_MATCH
    else:
        reason = STATIC
    # Constraints first: they are cheap and usually decide; the strategy may hash.
    return Rule(matches=all_of([*constraints, strategy]), reason=reason, variants=variants)


def compile_flag(
    raw: Mapping[str, Any],
    segments: Mapping[int, tuple[Predicate, ...]],
    rng: random.Random | None = None,
) -> Flag:
    """Compile one flag; an invalid definition gives a flag that is always off (§10)."""
    rng = rng or random.Random()  # noqa: S311 - bucketing draws, not secrets
    key = str(raw["key"])
    kind = str(raw.get("kind", "boolean"))
    off_value = raw.get("offValue", False if kind == "boolean" else None)
    raw_variants = list(raw.get("variants") or [])
    dependencies = tuple(
        Dependency(
            flag_key=str(d["feature"]),
            enabled=bool(d.get("enabled", True)),
            variants=frozenset(str(v) for v in d.get("variants") or []),
        )
        for d in raw.get("dependencies") or []
    )
    try:
        rules = tuple(_rule(r, key, segments, rng) for r in raw.get("rules") or [])
        ladder = compile_ladder(raw["ladder"]) if raw.get("ladder") else None
    except InvalidDefinition as exc:
        enabled = bool(raw.get("enabled", False))
        return Flag(key, kind, enabled, off_value, (), None, dependencies, invalid=str(exc))
    stickiness = (raw_variants[0].get("stickiness") if raw_variants else None) or "default"
    return Flag(
        key=key,
        kind=kind,
        enabled=bool(raw.get("enabled", False)),
        off_value=off_value,
        rules=rules,
        variants=_variant_set(raw_variants, key, stickiness),
        dependencies=dependencies,
        ladder=ladder,
    )


def compile_segments(raw: list[Mapping[str, Any]]) -> dict[int, tuple[Predicate, ...]]:
    """Each segment's constraints as predicates; an invalid segment never matches."""
    compiled: dict[int, tuple[Predicate, ...]] = {}
    for segment in raw:
        try:
            compiled[segment["id"]] = tuple(
                compile_constraint(c) for c in segment.get("constraints") or []
            )
        except InvalidDefinition:
            compiled[segment["id"]] = (_never,)
    return compiled


def snapshot_from_document(
    document: Mapping[str, Any], rng: random.Random | None = None
) -> Snapshot:
    """Compile a snapshot document into the engine's immutable snapshot."""
    segments = compile_segments(list(document.get("segments") or []))
    flags = {
        str(raw["key"]): compile_flag(raw, segments, rng) for raw in document.get("flags") or []
    }
    model = document.get("capabilityModel")
    return Snapshot(
        environment=str(document.get("environment", "")),
        version=int(document.get("version", 0)),
        flags=flags,
        capability=CapabilityModel(model) if model else None,
        segment_labels={
            str(key): str(label) for key, label in (document.get("segmentLabels") or {}).items()
        },
    )


# --- validation, for whoever saves definitions (the Django models call these) -----------------


def validate_constraints(raw: Any, path: str) -> list[str]:
    """Problems with a constraint list, each naming its field."""
    if not isinstance(raw, list):
        return [f"{path}: must be a list"]
    return [e for i, c in enumerate(raw) for e in validate_constraint(c, f"{path}[{i}]")]


def validate_variants(raw: Any, path: str, *, weighted: bool = True) -> list[str]:
    """Problems with a variant list: names, weights (not all zero), overrides."""
    if not isinstance(raw, list):
        return [f"{path}: must be a list"]
    errors: list[str] = []
    names: set[str] = set()
    for i, variant in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(variant, Mapping):
            errors.append(f"{where}: must be an object")
            continue
        name = variant.get("name")
        if not isinstance(name, str) or not name:
            errors.append(f"{where}.name: required, a non-empty string")
        elif name in names:
            errors.append(f"{where}.name: {name!r} is used twice")
        else:
            names.add(name)
        weight = variant.get("weight", 0)
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
            errors.append(f"{where}.weight: must be a whole number ≥ 0")
        for j, override in enumerate(variant.get("overrides") or []):
            if not isinstance(override, Mapping) or not isinstance(
                override.get("contextName"), str
            ):
                errors.append(f"{where}.overrides[{j}].contextName: required, a string")
            elif not isinstance(override.get("values"), list):
                errors.append(f"{where}.overrides[{j}].values: must be a list of strings")
    if weighted and raw and not errors and sum(int(v.get("weight", 0)) for v in raw) <= 0:
        errors.append(f"{path}: the weights add up to 0; give at least one a weight")
    return errors


def validate_rule(strategy: str, parameters: Mapping[str, Any], path: str) -> list[str]:
    """Problems with a rule's strategy and its parameters."""
    if strategy not in STRATEGIES:
        return [f"{path}.strategy: unknown strategy {strategy!r}"]
    errors: list[str] = []
    for name in ("rollout", "percentage"):
        if name in parameters:
            try:
                if parse_percentage(str(parameters[name])) is None:
                    errors.append(f"{path}.parameters.{name}: must be a whole number 0..100")
            except InvalidDefinition:
                errors.append(f"{path}.parameters.{name}: must be a whole number 0..100")
    if strategy in ("gradualRolloutUserId", "gradualRolloutSessionId"):
        errors += [
            f"{path}.parameters.{p}: required"
            for p in ("percentage", "groupId")
            if p not in parameters
        ]
    return errors


def validate_kind(kind: Any, path: str) -> list[str]:
    """Problems with a flag kind."""
    return [] if kind in KINDS else [f"{path}: must be one of {', '.join(sorted(KINDS))}"]
