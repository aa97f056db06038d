"""Unleash client-features documents <-> Edgeflags definitions (pure, no Django).

Used by the importer (which stores the definitions as rows) and by the conformance suite.
Strategies keep their names and parameters, so every client keeps its bucket.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollout.engine.context import as_text
from rollout.engine.literals import parse_number
from rollout.engine.model import (
    DISABLED_VARIANT,
    STRATEGIES,
    FlagDef,
    JSONValue,
    RuleDef,
    SegmentDef,
    VariantDef,
)
from rollout.engine.shapes import (
    constraint_from_json,
    dependency_from_json,
    flag_to_json,
    segment_to_json,
)
from rollout.engine.types import Decision

CONTEXT_FIELDS = ("userId", "sessionId", "remoteAddress", "environment", "appName", "currentTime")
_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class UnleashImport:
    """Definitions converted from an Unleash document, and what could not be mapped."""

    flags: tuple[FlagDef, ...]
    segments: tuple[SegmentDef, ...]
    unmapped: tuple[str, ...]  # each line names its place ("<feature>.strategies[0]: ...")


@dataclass(frozen=True, slots=True)
class Conversion:
    """The same conversion in JSON shapes (shapes.py), as the importer stores it."""

    flags: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    unmapped: list[str]

    def document(self, environment: str = "", version: int = 0) -> dict[str, Any]:
        """As a snapshot document (see document.py)."""
        return {
            "schema": 1,
            "environment": environment,
            "version": version,
            "flags": self.flags,
            "segments": self.segments,
        }


def off_value(kind: str) -> JSONValue:
    """The value a converted flag serves when off: Unleash has none, so the kind's zero."""
    zeros: dict[str, JSONValue] = {"boolean": False, "string": "", "number": 0, "object": {}}
    return zeros[kind]


def unleash_state(
    document: Mapping[str, Any],
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]], list[str]]:
    """(features, segments, unmapped) of a document, applying delta events in order."""
    if "events" not in document:
        return list(document.get("features") or []), list(document.get("segments") or []), []
    features: dict[str, Mapping[str, Any]] = {}
    segments: dict[Any, Mapping[str, Any]] = {}
    unmapped = []
    for index, event in enumerate(document["events"]):
        kind = event.get("type")
        if kind == "hydration":
            features = {f["name"]: f for f in event.get("features") or []}
            if "segments" in event:
                segments = {s["id"]: s for s in event.get("segments") or []}
        elif kind == "feature-updated":
            features[event["feature"]["name"]] = event["feature"]
        elif kind == "feature-removed":
            features.pop(event.get("featureName"), None)
        elif kind == "segment-updated":
            segments[event["segment"]["id"]] = event["segment"]
        elif kind == "segment-removed":
            segments.pop(event.get("segmentId"), None)
        else:
            unmapped.append(f"events[{index}]: unknown event type {kind!r}; skipped")
    return list(features.values()), list(segments.values()), unmapped


def decode_payload(payload: Any, where: str, unmapped: list[str]) -> tuple[JSONValue, str | None]:
    """(value, payload type) of an Unleash payload; (None, None) without one."""
    if not isinstance(payload, Mapping):
        return None, None
    kind = as_text(payload.get("type")) or "string"
    raw = payload.get("value")
    text = raw if isinstance(raw, str) else json.dumps(raw)
    if kind == "json":
        try:
            return json.loads(text), kind
        except ValueError:
            unmapped.append(f"{where}: payload is not valid JSON; kept as a string")
            return text, "string"
    if kind == "number":
        if _INTEGER.fullmatch(text):
            return int(text), kind
        number = parse_number(text)
        if number is None or not math.isfinite(number):
            unmapped.append(f"{where}: payload {text!r} is not a finite number; kept as a string")
            return text, "string"
        return number, kind
    return text, kind  # string, csv and any other type: the text itself


def encode_payload(payload_type: str, value: Any) -> dict[str, str]:
    """A decoded payload back in Unleash's shape: {type, value as a string}."""
    if payload_type == "json":
        return {"type": payload_type, "value": json.dumps(value, separators=(",", ":"))}
    if isinstance(value, str):
        return {"type": payload_type, "value": value}
    return {"type": payload_type, "value": as_text(value) or json.dumps(value)}


def _variants(raw: Any, where: str, unmapped: list[str]) -> tuple[VariantDef, ...]:
    variants = []
    for index, variant in enumerate(raw or []):
        value, payload_type = decode_payload(
            variant.get("payload"), f"{where}.variants[{index}]", unmapped
        )
        variants.append(
            VariantDef(
                name=str(variant["name"]),
                weight=int(variant.get("weight", 0)),
                value=value,
                payload_type=payload_type,
                stickiness=as_text(variant.get("stickiness")) or None,
                overrides=tuple(
                    (str(o["contextName"]), tuple(str(v) for v in o.get("values") or ()))
                    for o in variant.get("overrides") or ()
                ),
            )
        )
    return tuple(variants)


def flag_kind(feature: Mapping[str, Any]) -> str:
    """The Edgeflags kind of an Unleash feature, from its variants' payload types."""
    lists = [feature.get("variants") or []] + [
        s.get("variants") or [] for s in feature.get("strategies") or []
    ]
    types = {(v.get("payload") or {}).get("type") for variants in lists for v in variants}
    if not types:
        return "boolean"
    if types == {"json"}:
        return "object"
    if types == {"number"}:
        return "number"
    return "string"


def _rule(
    strategy: Mapping[str, Any], where: str, segment_ids: set[Any], unmapped: list[str]
) -> RuleDef:
    name = str(strategy.get("name", ""))
    if name not in STRATEGIES:
        unmapped.append(f"{where}: custom strategy {name!r} is not supported; it never matches")
    for segment_id in strategy.get("segments") or []:
        if segment_id not in segment_ids:
            unmapped.append(f"{where}: segment {segment_id} is not in the export; never matches")
    parameters = strategy.get("parameters") or {}
    return RuleDef(
        strategy=name,
        parameters=tuple(
            (str(key), text)
            for key, value in parameters.items()
            if (text := as_text(value)) is not None
        ),
        constraints=tuple(constraint_from_json(c) for c in strategy.get("constraints") or []),
        segments=tuple(int(s) for s in strategy.get("segments") or []),
        variants=_variants(strategy.get("variants"), where, unmapped),
    )


def from_unleash(document: Mapping[str, Any]) -> UnleashImport:
    """Convert an Unleash client-features document (full or delta) into definitions."""
    features, raw_segments, unmapped = unleash_state(document)
    segments = tuple(
        SegmentDef(
            id=int(raw["id"]),
            name=str(raw.get("name") or f"unleash-segment-{raw['id']}"),
            constraints=tuple(constraint_from_json(c) for c in raw.get("constraints") or []),
        )
        for raw in raw_segments
    )
    segment_ids = {s.id for s in segments}
    flags = []
    for feature in features:
        key = str(feature["name"])
        kind = flag_kind(feature)
        flags.append(
            FlagDef(
                key=key,
                kind=kind,
                enabled=feature.get("enabled") is True,
                off_value=off_value(kind),
                rules=tuple(
                    _rule(strategy, f"{key}.strategies[{index}]", segment_ids, unmapped)
                    for index, strategy in enumerate(feature.get("strategies") or [])
                ),
                variants=_variants(feature.get("variants"), key, unmapped),
                dependencies=tuple(
                    dependency_from_json(d) for d in feature.get("dependencies") or []
                ),
                description=str(feature.get("description") or ""),
            )
        )
    return UnleashImport(tuple(flags), segments, tuple(unmapped))


def convert(document: Mapping[str, Any]) -> Conversion:
    """Convert an Unleash document into Edgeflags' JSON shapes (for the importer)."""
    converted = from_unleash(document)
    return Conversion(
        flags=[flag_to_json(flag) for flag in converted.flags],
        segments=[segment_to_json(segment) for segment in converted.segments],
        unmapped=list(converted.unmapped),
    )


def context_from_unleash(context: Mapping[str, Any]) -> dict[str, Any]:
    """An Unleash SDK context as Edgeflags' flat context: userId becomes targetingKey.

    Unleash reads its six fields only at the top level, so properties with those names (or
    named targetingKey, which would stand for userId here) are dropped.
    """
    reserved = {*CONTEXT_FIELDS, "targetingKey"}
    flat: dict[str, Any] = {
        name: value
        for name, value in (context.get("properties") or {}).items()
        if value is not None and name not in reserved
    }
    for name in CONTEXT_FIELDS:
        if context.get(name) is not None:
            flat[name] = context[name]
    if "userId" in flat:
        flat["targetingKey"] = flat.pop("userId")
    return flat


def to_unleash_variant(decision: Decision) -> dict[str, Any]:
    """A decision as Unleash's getVariant answer: {name, payload?, enabled, feature_enabled}."""
    answer: dict[str, Any] = {
        "name": decision.variant,
        "enabled": decision.enabled and decision.variant != DISABLED_VARIANT,
        "feature_enabled": decision.enabled,
    }
    if decision.payload_type is not None:
        answer["payload"] = encode_payload(decision.payload_type, decision.value)
    return answer
