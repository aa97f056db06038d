"""Unleash client-features documents -> Edgeflags snapshot documents (pure, no Django).

Used by the importer (which then stores the result as rows) and by the conformance suite.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

OFF_VALUES: dict[str, Any] = {"boolean": False, "string": "", "number": 0, "object": {}}
CONTEXT_FIELDS = ("userId", "sessionId", "remoteAddress", "environment", "appName", "currentTime")


@dataclass
class Conversion:
    """A converted document and what could not be mapped (each line names its place)."""

    flags: list[dict[str, Any]] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    def document(self, environment: str = "", version: int = 0) -> dict[str, Any]:
        """As a snapshot document (see document.py)."""
        return {
            "schema": 1,
            "environment": environment,
            "version": version,
            "flags": self.flags,
            "segments": self.segments,
        }


def unleash_state(document: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
    """(features, segments) of a document, applying delta events (§9) in order."""
    if "events" not in document:
        return list(document.get("features") or []), list(document.get("segments") or [])
    features: dict[str, Any] = {}
    segments: dict[Any, Any] = {}
    for event in document["events"]:
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
    return list(features.values()), list(segments.values())


def _payload(payload: Any, where: str, unmapped: list[str]) -> tuple[bool, Any, str | None]:
    if not isinstance(payload, Mapping):
        return False, None, None
    kind, raw = payload.get("type"), payload.get("value")
    if kind == "json" and isinstance(raw, str):
        try:
            return True, json.loads(raw), "json"
        except ValueError:
            unmapped.append(f"{where}: payload is not valid JSON; kept as a string")
            return True, raw, "string"
    if kind == "number" and isinstance(raw, str):
        try:
            number = float(raw)
        except ValueError:
            unmapped.append(f"{where}: payload {raw!r} is not a number; kept as a string")
            return True, raw, "string"
        is_whole = number.is_integer() and not any(c in raw for c in ".eE")
        return True, int(number) if is_whole else number, "number"
    return True, raw, str(kind) if kind is not None else None


def convert_variants(raw: Any, where: str, unmapped: list[str]) -> list[dict[str, Any]]:
    """Unleash variants in Edgeflags' shape: the payload decoded into `value`."""
    variants = []
    for index, variant in enumerate(raw or []):
        has_value, value, payload_type = _payload(
            variant.get("payload"), f"{where}.variants[{index}]", unmapped
        )
        entry: dict[str, Any] = {"name": variant["name"], "weight": int(variant.get("weight", 0))}
        if has_value:
            entry["value"] = value
            entry["payloadType"] = payload_type
        if variant.get("stickiness"):
            entry["stickiness"] = variant["stickiness"]
        if variant.get("overrides"):
            entry["overrides"] = [
                {"contextName": o["contextName"], "values": list(o.get("values") or [])}
                for o in variant["overrides"]
            ]
        variants.append(entry)
    return variants


def flag_kind(feature: Mapping[str, Any]) -> str:
    """The Edgeflags kind of an Unleash feature, from its variants' payload types."""
    lists = [feature.get("variants") or []] + [
        s.get("variants") or [] for s in feature.get("strategies") or []
    ]
    variants = [v for vs in lists for v in vs]
    if not variants:
        return "boolean"
    types = {(v.get("payload") or {}).get("type") for v in variants}
    if types == {"json"}:
        return "object"
    if types == {"number"}:
        return "number"
    return "string"


def convert(document: Mapping[str, Any]) -> Conversion:
    """Convert an Unleash client-features document (full or delta)."""
    features, segments = unleash_state(document)
    result = Conversion()
    known_segments = {s["id"] for s in segments}
    for segment in segments:
        result.segments.append(
            {
                "id": segment["id"],
                "key": str(segment.get("name") or f"unleash-segment-{segment['id']}"),
                "constraints": list(segment.get("constraints") or []),
            }
        )
    for feature in features:
        key = feature["name"]
        kind = flag_kind(feature)
        rules = []
        for index, strategy in enumerate(feature.get("strategies") or []):
            where = f"{key}.strategies[{index}]"
            for segment_id in strategy.get("segments") or []:
                if segment_id not in known_segments:
                    result.unmapped.append(
                        f"{where}: segment {segment_id} is not in the export; "
                        "the rule never matches, as in Unleash"
                    )
            rules.append(
                {
                    "strategy": strategy.get("name", ""),
                    "parameters": {
                        str(k): str(v) for k, v in (strategy.get("parameters") or {}).items()
                    },
                    "constraints": list(strategy.get("constraints") or []),
                    "segments": list(strategy.get("segments") or []),
                    "variants": convert_variants(strategy.get("variants"), where, result.unmapped),
                }
            )
        result.flags.append(
            {
                "key": key,
                "kind": kind,
                "description": feature.get("description") or "",
                "enabled": bool(feature.get("enabled")),
                "offValue": OFF_VALUES[kind],
                "variants": convert_variants(feature.get("variants"), key, result.unmapped),
                "dependencies": [
                    {k: v for k, v in d.items() if k in ("feature", "enabled", "variants")}
                    for d in feature.get("dependencies") or []
                ],
                "rules": rules,
            }
        )
    return result


def context_from_unleash(context: Mapping[str, Any]) -> dict[str, Any]:
    """An Unleash SDK context as Edgeflags' flat context (userId becomes targetingKey)."""
    flat: dict[str, Any] = {}
    for name, value in (context.get("properties") or {}).items():
        if value is not None:
            flat[name] = value
    for name in CONTEXT_FIELDS:
        if context.get(name) is not None:
            flat[name] = context[name]
    if "userId" in flat:
        flat["targetingKey"] = flat.pop("userId")
    return flat
