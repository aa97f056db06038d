"""The snapshot document (JSON, as published and downloaded): compiling it, validating JSON.

Document, schema 1 (the shapes of flags and segments are in shapes.py):
    {"schema": 1, "environment": str, "version": int,
     "segments": [segment], "flags": [flag],
     "capabilityModel"?: the segmentation model artifact (segments/ml),
     "segmentLabels"?: {segment key: readable label},
     "segmentIdentities"?: {segment key: the segment's stable identity, an integer}}

The validators here take definitions as the Django models store them (JSON), check their
shape, then apply validation.py; each message names its field.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from rollout.engine.capability import CapabilityModel
from rollout.engine.model import KINDS, LIST_OPERATORS, RuleDef
from rollout.engine.shapes import (
    constraint_from_json,
    flag_from_json,
    segment_from_json,
    variant_from_json,
)
from rollout.engine.snapshot import build_snapshot
from rollout.engine.types import Snapshot
from rollout.engine.validation import constraint_problems, strategy_problems, variant_problems


def snapshot_from_document(
    document: Mapping[str, Any], rng: random.Random | None = None
) -> Snapshot:
    """Compile a snapshot document into the engine's immutable snapshot."""
    model = document.get("capabilityModel")
    labels = document.get("segmentLabels") or {}
    identities = document.get("segmentIdentities") or {}
    return build_snapshot(
        int(document.get("version", 0)),
        str(document.get("environment", "")),
        [flag_from_json(raw) for raw in document.get("flags") or []],
        [segment_from_json(raw) for raw in document.get("segments") or []],
        capability=CapabilityModel(model) if model else None,
        segment_labels={str(key): str(label) for key, label in labels.items()},
        segment_identities={str(key): int(identity) for key, identity in identities.items()},
        rng=rng,
    )


def _constraint_shape(raw: Any, path: str) -> list[str]:
    if not isinstance(raw, Mapping):
        return [f"{path}: must be an object"]
    errors = []
    if not isinstance(raw.get("contextName"), str):
        errors.append(f"{path}.contextName: required, a non-empty string")
    for name in ("inverted", "caseInsensitive"):
        if name in raw and not isinstance(raw[name], bool):
            errors.append(f"{path}.{name}: must be true or false")
    operator = raw.get("operator")
    if operator in LIST_OPERATORS:
        values = raw.get("values")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            errors.append(f"{path}.values: must be a list of strings")
    elif "value" in raw and not isinstance(raw["value"], str):
        errors.append(f"{path}.value: must be a string")
    return errors


def validate_constraints(raw: Any, path: str) -> list[str]:
    """Problems of a JSON constraint list, each naming its field."""
    if not isinstance(raw, list):
        return [f"{path}: must be a list"]
    errors = []
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        shape = _constraint_shape(item, where)
        errors += shape or [str(p) for p in constraint_problems(constraint_from_json(item), where)]
    return errors


def validate_variants(raw: Any, path: str) -> list[str]:
    """Problems of a JSON variant list: names, weights (not all zero), overrides."""
    if not isinstance(raw, list):
        return [f"{path}: must be a list"]
    errors = []
    for index, variant in enumerate(raw):
        where = f"{path}[{index}]"
        if not isinstance(variant, Mapping):
            errors.append(f"{where}: must be an object")
            continue
        if not isinstance(variant.get("name"), str):
            errors.append(f"{where}.name: required, a non-empty string")
        weight = variant.get("weight", 0)
        if not isinstance(weight, int) or isinstance(weight, bool):
            errors.append(f"{where}.weight: must be a whole number ≥ 0")
        for number, override in enumerate(variant.get("overrides") or []):
            if not isinstance(override, Mapping) or not isinstance(override.get("values"), list):
                errors.append(f"{where}.overrides[{number}].values: must be a list of strings")
    if errors:
        return errors
    return [str(p) for p in variant_problems([variant_from_json(v) for v in raw], path)]


def validate_rule(strategy: str, parameters: Mapping[str, Any], path: str) -> list[str]:
    """Problems of a rule's strategy and the parameters it is given, as `{path}.…`."""
    rule = RuleDef(strategy=strategy, parameters=tuple((k, str(v)) for k, v in parameters.items()))
    return [str(p) for p in strategy_problems(rule, path, parameters_complete=False)]


def validate_kind(kind: Any, path: str) -> list[str]:
    """Problems of a flag kind."""
    return [] if kind in KINDS else [f"{path}: must be one of {', '.join(sorted(KINDS))}"]
