"""The engine's compiled value types: the snapshot, its flags and rules, and the decision."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from rollout.engine.capability import CapabilityModel
from rollout.engine.context import Context
from rollout.engine.edge_models import ServedModel
from rollout.engine.ladder import Ladder
from rollout.engine.model import FlagDef

# OFREP / OpenFeature reason names.
STATIC = "STATIC"  # no rule could make a difference: no rules, or an unconditional first one
DEFAULT = "DEFAULT"  # no rule matched: the off value
TARGETING_MATCH = "TARGETING_MATCH"  # a rule with conditions (or a variant override) matched
SPLIT = "SPLIT"  # a percentage rollout or a weighted variant split decided
DISABLED = "DISABLED"  # the flag is off, a dependency failed, or the definition is invalid
ERROR = "ERROR"

FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
GENERAL = "GENERAL"
TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"  # a split with nothing to stick to (strict)
INVALID_CONTEXT = "INVALID_CONTEXT"

NO_METADATA: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one flag.

    Most decisions are built once, when the snapshot is compiled, and shared: treat `value`
    (which may be a decoded JSON object) as read-only.
    """

    flag_key: str
    value: Any
    variant: str  # "disabled" when no variant applies (Unleash's name)
    reason: str
    enabled: bool  # Unleash isEnabled
    flag_kind: str = "boolean"
    error_code: str | None = None
    error_message: str | None = None
    # primitives only (OFREP flag metadata); one shared empty mapping by default
    metadata: Mapping[str, Any] = field(default_factory=lambda: NO_METADATA)
    ui_state: Mapping[str, Any] | None = None  # edge features: what the client renders
    unmet: Mapping[str, tuple[str, ...]] | None = None  # rungs above, and what they lacked
    payload_type: str | None = None  # the chosen variant's Unleash payload type, if any
    # Edge features served a cloud rung: the decision the client falls back to the moment it
    # goes offline, without asking (edgeflags.js), so that it never waits on a dead link.
    offline: Decision | None = None
    # An on-device rung's model version: what to run and how to fetch it (edge_models.py).
    model: ServedModel | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule: does it match, and then the decision (or the variant pick) it gives."""

    matches: Callable[[Context], bool]
    decision: Decision  # when `pick` is None
    pick: Callable[[Context], Decision] | None = None  # weighted variants


@dataclass(frozen=True, slots=True)
class Dependency:
    """A compiled dependency on a parent flag (which has no dependencies of its own)."""

    parent: Flag
    enabled: bool
    variants: frozenset[str]


@dataclass(frozen=True, slots=True)
class Flag:
    """A compiled flag of one environment."""

    key: str
    kind: str
    enabled: bool  # as defined (a ladder flag that is off serves its last rung)
    active: bool  # enabled and evaluable; False: every decision is `off`
    off: Decision  # DISABLED: off, a dependency failed, or an invalid definition
    no_match: Decision  # DEFAULT: no rule matched
    rules: tuple[Rule, ...]
    dependencies: tuple[Dependency, ...]
    definition: FlagDef
    problems: tuple[str, ...] = ()  # why the flag cannot be evaluated (then always off)
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
    # segment key -> the segment's stable identity: evidence and rollout state hang off the
    # identity, so a renamed segment keeps them; keys are what rules and clients see.
    segment_identities: Mapping[str, int] = field(default_factory=dict)
