"""The definitions a snapshot is built from: flags, rules, constraints, variants, segments.

Unleash-compatible (a rule is an Unleash strategy) but in Edgeflags' words, and close to
what a database row holds, so that the Django side and the Unleash converter both map to
them. Definitions are plain values; `build_snapshot` compiles them once for evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

JSONValue: TypeAlias = (
    str | int | float | bool | Sequence["JSONValue"] | Mapping[str, "JSONValue"] | None
)

KINDS = frozenset({"boolean", "string", "number", "object"})

LIST_OPERATORS = frozenset(
    {"IN", "NOT_IN", "STR_STARTS_WITH", "STR_ENDS_WITH", "STR_CONTAINS", "IN_CIDR"}
)
NUM_OPERATORS = frozenset({"NUM_EQ", "NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE"})
DATE_OPERATORS = frozenset({"DATE_AFTER", "DATE_BEFORE"})
SEMVER_OPERATORS = frozenset({"SEMVER_EQ", "SEMVER_GT", "SEMVER_GTE", "SEMVER_LT", "SEMVER_LTE"})
OPERATORS = LIST_OPERATORS | NUM_OPERATORS | DATE_OPERATORS | SEMVER_OPERATORS | {"REGEX"}

STRATEGIES = frozenset(
    {
        "default",
        "userWithId",
        "gradualRolloutUserId",
        "gradualRolloutSessionId",
        "gradualRolloutRandom",
        "flexibleRollout",
        "remoteAddress",
        "applicationHostname",
    }
)

# Unleash's name for "no variant"; a variant may not be called this.
DISABLED_VARIANT = "disabled"


@dataclass(frozen=True, slots=True)
class ConstraintDef:
    """One condition on a context attribute (docs/bucketing.md, "Constraint operators")."""

    context_name: str
    operator: str
    values: tuple[str, ...] = ()  # list operators: IN, NOT_IN, STR_*, IN_CIDR
    value: str | None = None  # single-value operators: NUM_*, DATE_*, SEMVER_*, REGEX
    inverted: bool = False
    case_insensitive: bool = False


@dataclass(frozen=True, slots=True)
class VariantDef:
    """A weighted variant; `payload_type` None means it carries no value."""

    name: str
    weight: int
    value: JSONValue = None  # the decoded payload
    payload_type: str | None = None  # Unleash payload type: string, json, csv, number
    stickiness: str | None = None
    overrides: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (context name, values)


@dataclass(frozen=True, slots=True)
class RuleDef:
    """A targeting rule: an Unleash strategy with its parameters, constraints and segments."""

    strategy: str = "default"
    parameters: tuple[tuple[str, str], ...] = ()
    constraints: tuple[ConstraintDef, ...] = ()
    segments: tuple[int, ...] = ()
    variants: tuple[VariantDef, ...] = ()

    def parameter(self, name: str) -> str | None:
        """The parameter `name`, or None when it is not set."""
        for key, value in self.parameters:
            if key == name:
                return value
        return None


def rollout_rule(
    flag_key: str,
    percentage: int,
    *,
    stickiness: str = "default",
    constraints: tuple[ConstraintDef, ...] = (),
    segments: tuple[int, ...] = (),
    variants: tuple[VariantDef, ...] = (),
) -> RuleDef:
    """An Edgeflags-native rule: a sticky percentage rollout bucketed by the flag key."""
    return RuleDef(
        strategy="flexibleRollout",
        parameters=(
            ("rollout", str(percentage)),
            ("stickiness", stickiness),
            ("groupId", flag_key),
        ),
        constraints=constraints,
        segments=segments,
        variants=variants,
    )


@dataclass(frozen=True, slots=True)
class DependencyDef:
    """The flag is on only if its parent is on (or off), optionally with one of `variants`."""

    flag_key: str
    enabled: bool = True
    variants: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FlagDef:
    """A flag in one environment."""

    key: str
    kind: str = "boolean"
    enabled: bool = True
    off_value: JSONValue = False
    rules: tuple[RuleDef, ...] = ()
    variants: tuple[VariantDef, ...] = ()  # the flag's own, used when a rule has none
    dependencies: tuple[DependencyDef, ...] = ()
    description: str = ""
    # An edge feature's degradation ladder in its document form (see ladder.py).
    ladder: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SegmentDef:
    """A rule segment: constraints that many rules can refer to by id."""

    id: int
    name: str = ""
    constraints: tuple[ConstraintDef, ...] = ()
