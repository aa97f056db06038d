"""Validation of definitions before they are saved (docs/bucketing.md).

Every problem names its field ("rules[0].constraints[1].value: 'abc' is not a number").
A problem is *fatal* where an Unleash engine would switch the whole flag off; the compiler
raises those (InvalidDefinition) and validation reports them by compiling. The others make
a rule or a constraint silently false at evaluation time, so a save is rejected for them too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import re2

from rollout.engine.constraints import (
    InvalidDefinition,
    compile_constraint,
    compile_regex,
    parse_networks,
)
from rollout.engine.ladder import compile_ladder
from rollout.engine.literals import parse_percentage
from rollout.engine.model import (
    DISABLED_VARIANT,
    KINDS,
    SEMVER_OPERATORS,
    STRATEGIES,
    ConstraintDef,
    FlagDef,
    RuleDef,
    SegmentDef,
    VariantDef,
)
from rollout.engine.strategies import PERCENTAGE_PARAMETERS, compile_strategy
from rollout.engine.variants import check_variants

_KIND_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "string": (str,),
    "number": (int, float),
    "object": (dict, list),
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem with a definition."""

    field: str
    message: str
    fatal: bool  # an Unleash engine switches the whole flag off for it

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _fatal(exc: InvalidDefinition) -> Problem:
    return Problem(exc.field, exc.message, fatal=True)


def constraint_problems(constraint: ConstraintDef, path: str) -> list[Problem]:
    """The problems of one constraint."""
    try:
        compile_constraint(constraint, path)
    except InvalidDefinition as exc:
        return [_fatal(exc)]
    problems = []
    if not constraint.context_name:
        problems.append(Problem(f"{path}.contextName", "required", fatal=False))
    operator, value = constraint.operator, constraint.value
    if operator == "REGEX":
        if value is None:
            problems.append(Problem(f"{path}.value", "required for REGEX", fatal=False))
        else:
            try:
                compile_regex(value, constraint.case_insensitive)
            except re2.error as exc:
                problems.append(
                    Problem(
                        f"{path}.value", f"{value!r} is not a valid RE2 expression ({exc})", False
                    )
                )
    elif operator in SEMVER_OPERATORS and value is not None and value.startswith("v"):
        problems.append(
            Problem(f"{path}.value", f"{value!r} is not a semantic version like 1.2.3", False)
        )
    elif operator == "IN_CIDR":
        problems += [
            Problem(f"{path}.values[{i}]", f"{entry!r} is not an IP address or CIDR range", False)
            for i, entry in enumerate(constraint.values)
            if not parse_networks([entry])
        ]
    return problems


def _constraints_problems(constraints: Sequence[ConstraintDef], path: str) -> list[Problem]:
    return [
        problem
        for index, constraint in enumerate(constraints)
        for problem in constraint_problems(constraint, f"{path}[{index}]")
    ]


def strategy_problems(
    rule: RuleDef, path: str, *, flag_key: str = "", parameters_complete: bool = True
) -> list[Problem]:
    """The problems of a rule's strategy and its parameters.

    `parameters_complete=False` checks only the parameters given (plus those Unleash
    requires), for a caller that keeps the rollout percentage outside the parameters.
    """
    if rule.strategy not in STRATEGIES:
        return [Problem(f"{path}.strategy", f"unknown strategy {rule.strategy!r}", False)]
    try:
        compile_strategy(rule, flag_key, lambda: 0.0, path)
    except InvalidDefinition as exc:
        return [_fatal(exc)]
    problems = []
    parameter = PERCENTAGE_PARAMETERS.get(rule.strategy)
    gradual = rule.strategy in ("gradualRolloutUserId", "gradualRolloutSessionId")
    if parameter is not None:
        given = rule.parameter(parameter)
        # Unleash requires the gradual strategies' percentage; flexibleRollout's may live
        # in the caller's own column.
        optional = not parameters_complete and rule.strategy == "flexibleRollout"
        if given is None and not optional:
            problems.append(Problem(f"{path}.parameters.{parameter}", "required", False))
        elif given is not None and parse_percentage(given) is None:
            problems.append(
                Problem(f"{path}.parameters.{parameter}", "must be a whole number 0..100", False)
            )
    if gradual and rule.parameter("groupId") is None:
        problems.append(Problem(f"{path}.parameters.groupId", "required", False))
    return problems


def variant_problems(variants: Sequence[VariantDef], path: str) -> list[Problem]:
    """The problems of a variant list: weights, names, overrides."""
    try:
        check_variants(variants, path)
    except InvalidDefinition as exc:
        return [_fatal(exc)]
    problems = []
    names: set[str] = set()
    for index, variant in enumerate(variants):
        where = f"{path}[{index}]"
        if not variant.name:
            problems.append(Problem(f"{where}.name", "required, a non-empty string", False))
        elif variant.name == DISABLED_VARIANT:
            problems.append(Problem(f"{where}.name", "'disabled' means no variant", False))
        elif variant.name in names:
            problems.append(Problem(f"{where}.name", f"{variant.name!r} is used twice", False))
        names.add(variant.name)
        for number, (context_name, _values) in enumerate(variant.overrides):
            if not context_name:
                problems.append(
                    Problem(f"{where}.overrides[{number}].contextName", "required", False)
                )
    return problems


def rule_problems(
    rule: RuleDef, path: str, *, flag_key: str = "", segment_ids: Collection[int] | None = None
) -> list[Problem]:
    """The problems of a rule: strategy, constraints, segments (when known) and variants."""
    problems = strategy_problems(rule, path, flag_key=flag_key)
    problems += _constraints_problems(rule.constraints, f"{path}.constraints")
    if segment_ids is not None:
        problems += [
            Problem(f"{path}.segments[{i}]", f"segment {segment} does not exist", fatal=True)
            for i, segment in enumerate(rule.segments)
            if segment not in segment_ids
        ]
    return problems + variant_problems(rule.variants, f"{path}.variants")


def _off_value_problems(flag: FlagDef) -> list[Problem]:
    allowed = _KIND_TYPES.get(flag.kind)
    value = flag.off_value
    if allowed is None or value is None:
        return []  # None: no value, the client uses its own default
    if not isinstance(value, allowed) or (flag.kind == "number" and isinstance(value, bool)):
        return [Problem("offValue", f"must be a {flag.kind} value for a {flag.kind} flag", False)]
    return []


def _dependency_problems(flag: FlagDef, flags: Mapping[str, FlagDef] | None) -> list[Problem]:
    problems = []
    for index, dependency in enumerate(flag.dependencies):
        where = f"dependencies[{index}].feature"
        parent = None if flags is None else flags.get(dependency.flag_key)
        if not dependency.flag_key:
            problems.append(Problem(where, "required", False))
        elif dependency.flag_key == flag.key:
            problems.append(Problem(where, "a flag cannot depend on itself", True))
        elif flags is not None and parent is None:
            problems.append(Problem(where, f"flag {dependency.flag_key!r} does not exist", True))
        elif parent is not None and parent.dependencies:
            problems.append(
                Problem(where, f"flag {parent.key!r} has dependencies: one level only", True)
            )
    return problems


def flag_problems(
    flag: FlagDef,
    *,
    segment_ids: Collection[int] | None = None,
    flags: Mapping[str, FlagDef] | None = None,
) -> list[Problem]:
    """Every problem of a flag; segments and parents are checked when given."""
    problems = [] if flag.key else [Problem("key", "required", False)]
    if flag.kind not in KINDS:
        kinds = ", ".join(sorted(KINDS))
        problems.append(Problem("kind", f"must be one of {kinds}", fatal=True))
    problems += _off_value_problems(flag)
    for index, rule in enumerate(flag.rules):
        problems += rule_problems(
            rule, f"rules[{index}]", flag_key=flag.key, segment_ids=segment_ids
        )
    problems += variant_problems(flag.variants, "variants")
    problems += _dependency_problems(flag, flags)
    if flag.ladder is not None:
        try:
            compile_ladder(flag.ladder)
        except InvalidDefinition as exc:
            problems.append(_fatal(exc))
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(Problem("ladder", f"malformed ({exc})", fatal=True))
    return problems


def validate_constraint(constraint: ConstraintDef, path: str = "constraint") -> list[str]:
    """Human-readable problems of one constraint, each naming its field; empty when valid."""
    return [str(p) for p in constraint_problems(constraint, path)]


def validate_segment(segment: SegmentDef) -> list[str]:
    """Human-readable problems of a segment's constraints; empty when valid."""
    return [str(p) for p in _constraints_problems(segment.constraints, "constraints")]


def validate_flag(
    flag: FlagDef,
    *,
    segment_ids: Collection[int] | None = None,
    flags: Mapping[str, FlagDef] | None = None,
) -> list[str]:
    """Human-readable problems of a flag, each naming its field; empty when valid."""
    return [str(p) for p in flag_problems(flag, segment_ids=segment_ids, flags=flags)]
