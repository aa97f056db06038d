"""The engine's value types: compiled snapshot, flags, rules and the decision."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from rollout.engine.capability import CapabilityModel
from rollout.engine.context import Context
from rollout.engine.ladder import Ladder

# OFREP / OpenFeature reason names.
STATIC = "STATIC"
DEFAULT = "DEFAULT"
TARGETING_MATCH = "TARGETING_MATCH"
SPLIT = "SPLIT"
DISABLED = "DISABLED"
ERROR = "ERROR"

DISABLED_VARIANT = "disabled"


class Decision(NamedTuple):
    """The answer for one flag. A NamedTuple: immutable and the cheapest object to build."""

    flag_key: str
    value: Any
    variant: str
    reason: str
    enabled: bool
    flag_kind: str = "boolean"
    error_code: str | None = None
    error_message: str | None = None
    metadata: Mapping[str, Any] = {}  # primitives only (OFREP flag metadata)
    ui_state: Mapping[str, Any] | None = None  # edge features: what the client renders
    unmet: Mapping[str, tuple[str, ...]] | None = None  # rungs above, and what they lacked


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    weight: int
    has_value: bool
    value: Any
    payload_type: str | None
    stickiness: str | None
    overrides: tuple[tuple[str, frozenset[str]], ...]


@dataclass(frozen=True, slots=True)
class VariantSet:
    """Weighted variants with the group and stickiness that pick among them."""

    variants: tuple[Variant, ...]
    group_id: str
    stickiness: str
    total_weight: int
    with_overrides: bool


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled targeting rule: does it match, is it a split, which variants it serves."""

    matches: Callable[[Context], bool]
    reason: str  # the reason when this rule decides: STATIC, TARGETING_MATCH or SPLIT
    variants: VariantSet | None


@dataclass(frozen=True, slots=True)
class Dependency:
    flag_key: str
    enabled: bool
    variants: frozenset[str]


@dataclass(frozen=True, slots=True)
class Flag:
    """A compiled flag of one environment."""

    key: str
    kind: str
    enabled: bool
    off_value: Any
    rules: tuple[Rule, ...]
    variants: VariantSet | None
    dependencies: tuple[Dependency, ...]
    invalid: str | None = None  # why the definition cannot be evaluated (then always off)
    ladder: Ladder | None = None  # edge features: the degradation ladder


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An environment's compiled, immutable ruleset."""

    environment: str
    version: int
    flags: Mapping[str, Flag]
    # the capability segmentation model (None until a first segmentation run published one)
    capability: CapabilityModel | None = None
    segment_labels: Mapping[str, str] = field(default_factory=dict)
