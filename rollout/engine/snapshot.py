"""build_snapshot: compile definitions once into an immutable snapshot ready to evaluate.

Everything that does not depend on the client is done here: constraints and strategies
become predicates, segments are inlined into the rules that use them, parents are linked
to their children, and every decision a rule can give is built in advance, so evaluating
a flag allocates nothing but the context.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

from rollout.engine.capability import CapabilityModel
from rollout.engine.constraints import (
    InvalidDefinition,
    Predicate,
    always,
    compile_constraint,
    never,
)
from rollout.engine.ladder import Ladder, compile_ladder
from rollout.engine.model import DISABLED_VARIANT, KINDS, FlagDef, RuleDef, SegmentDef, VariantDef
from rollout.engine.strategies import Draw, compile_strategy
from rollout.engine.types import (
    DEFAULT,
    DISABLED,
    SPLIT,
    STATIC,
    TARGETING_MATCH,
    Decision,
    Dependency,
    Flag,
    Rule,
    Snapshot,
)
from rollout.engine.variants import check_variants, is_split, variant_picker

CompiledSegments = Mapping[int, tuple[Predicate, ...] | InvalidDefinition]


def all_of(predicates: Sequence[Predicate]) -> Predicate:
    """A predicate true when every one of `predicates` is (short-circuit, in order)."""
    if not predicates:
        return always
    if len(predicates) == 1:
        return predicates[0]
    # Short chains unrolled: a generator per call costs more than the checks themselves.
    if len(predicates) == 2:
        a, b = predicates
        return lambda ctx: a(ctx) and b(ctx)
    if len(predicates) == 3:
        a, b, c = predicates
        return lambda ctx: a(ctx) and b(ctx) and c(ctx)
    chain = tuple(predicates)
    return lambda ctx: all(p(ctx) for p in chain)


def _served_value(flag: FlagDef, variant: VariantDef | None) -> object:
    """What an enabled flag serves: the variant's value; else true for a boolean flag, the
    variant's name for a string flag, and the off value for the other kinds."""
    if variant is not None and variant.payload_type is not None:
        return variant.value
    if flag.kind == "boolean":
        return True
    if variant is not None and flag.kind == "string":
        return variant.name
    return flag.off_value


def _served(flag: FlagDef, variant: VariantDef | None, reason: str) -> Decision:
    return Decision(
        flag.key,
        _served_value(flag, variant),
        DISABLED_VARIANT if variant is None else variant.name,
        reason,
        True,
        flag.kind,
        payload_type=None if variant is None else variant.payload_type,
    )


def _rule(flag: FlagDef, rule: RuleDef, matches: Predicate, reason: str, draw: Draw) -> Rule:
    """The rule with its outcome: its own variants first, else the flag's."""
    if rule.variants:
        variants = rule.variants
        group_id = rule.parameter("groupId") or flag.key
        # Yggdrasil ignores the stickiness of individual strategy variants.
        stickiness = rule.parameter("stickiness") or "default"
    else:
        variants = flag.variants
        group_id = flag.key
        stickiness = (variants[0].stickiness if variants else None) or "default"
    plain = _served(flag, None, reason)
    if not variants:
        return Rule(matches, plain)
    weighted_reason = SPLIT if is_split(variants) else reason
    picker = variant_picker(
        variants,
        group_id=group_id,
        stickiness=stickiness,
        weighted=[_served(flag, v, weighted_reason) for v in variants],
        overridden=[_served(flag, v, TARGETING_MATCH) for v in variants],
        draw=draw,
    )
    return Rule(matches, plain, picker.pick)


def _segment_checks(rule: RuleDef, path: str, segments: CompiledSegments) -> list[Predicate]:
    checks: list[Predicate] = []
    for index, segment_id in enumerate(rule.segments):
        compiled = segments.get(segment_id)
        where = f"{path}.segments[{index}]"
        # Yggdrasil switches the whole flag off for these.
        if compiled is None:
            raise InvalidDefinition(where, f"segment {segment_id} does not exist")
        if isinstance(compiled, InvalidDefinition):
            raise InvalidDefinition(where, f"segment {segment_id} is invalid: {compiled}")
        checks.extend(compiled)
    return checks


def _rules(flag: FlagDef, segments: CompiledSegments, draw: Draw) -> tuple[Rule, ...]:
    # No rules: on for everyone, as one unconditional rule.
    definitions = flag.rules or (RuleDef(),)
    rules = []
    for index, rule in enumerate(definitions):
        path = f"rules[{index}]"
        checks = [
            compile_constraint(c, f"{path}.constraints[{n}]")
            for n, c in enumerate(rule.constraints)
        ]
        checks += _segment_checks(rule, path, segments)
        strategy = compile_strategy(rule, flag.key, draw, path)
        check_variants(rule.variants, f"{path}.variants")
        if strategy.check is never or never in checks:
            continue  # can never match: nothing to evaluate
        if strategy.check is not always:
            checks.append(strategy.check)  # last: cheap constraints usually decide first
        # STATIC only when nothing about the client could have changed the answer.
        conditional = bool(
            rule.constraints
            or rule.segments
            or strategy.conditional
            or index > 0
            or flag.dependencies
        )
        reason = SPLIT if strategy.split else TARGETING_MATCH if conditional else STATIC
        rules.append(_rule(flag, rule, all_of(checks), reason, draw))
    return tuple(rules)


def _dependencies(
    flag: FlagDef, parents: Mapping[str, Flag], defined: Mapping[str, FlagDef]
) -> tuple[Dependency, ...]:
    dependencies = []
    for index, dependency in enumerate(flag.dependencies):
        parent = parents.get(dependency.flag_key)
        if parent is None:
            # Never satisfied: the flag is always off.
            where = f"dependencies[{index}].feature"
            if dependency.flag_key in defined:
                raise InvalidDefinition(
                    where, f"flag {dependency.flag_key!r} has dependencies: one level only"
                )
            raise InvalidDefinition(where, f"flag {dependency.flag_key!r} does not exist")
        dependencies.append(Dependency(parent, dependency.enabled, frozenset(dependency.variants)))
    return tuple(dependencies)


def _ladder(flag: FlagDef) -> Ladder | None:
    return None if flag.ladder is None else compile_ladder(flag.ladder)


def compile_flag(
    flag: FlagDef,
    segments: CompiledSegments,
    parents: Mapping[str, Flag],
    defined: Mapping[str, FlagDef],
    draw: Draw,
) -> Flag:
    """One flag compiled; an invalid definition gives a flag that is always off."""
    off = Decision(flag.key, flag.off_value, DISABLED_VARIANT, DISABLED, False, flag.kind)
    try:
        if flag.kind not in KINDS:
            raise InvalidDefinition("kind", f"unknown kind {flag.kind!r}")
        check_variants(flag.variants, "variants")
        rules = _rules(flag, segments, draw)
        dependencies = _dependencies(flag, parents, defined)
        ladder = _ladder(flag)
    except InvalidDefinition as exc:
        problem = str(exc)
        try:
            ladder = _ladder(flag)  # an edge feature still serves its safe rungs
        except InvalidDefinition:
            ladder = None
        off = Decision(
            flag.key,
            flag.off_value,
            DISABLED_VARIANT,
            DISABLED,
            False,
            flag.kind,
            error_message=f"invalid definition: {problem}",
        )
        return Flag(
            key=flag.key,
            kind=flag.kind,
            enabled=flag.enabled,
            active=False,
            off=off,
            no_match=off,
            rules=(),
            dependencies=(),
            definition=flag,
            problems=(problem,),
            ladder=ladder,
        )
    no_match = Decision(flag.key, flag.off_value, DISABLED_VARIANT, DEFAULT, False, flag.kind)
    return Flag(
        key=flag.key,
        kind=flag.kind,
        enabled=flag.enabled,
        active=flag.enabled,
        off=off,
        no_match=no_match,
        rules=rules,
        dependencies=dependencies,
        definition=flag,
        ladder=ladder,
    )


def compile_segments(
    segments: Iterable[SegmentDef],
) -> dict[int, tuple[Predicate, ...] | InvalidDefinition]:
    """Each segment's constraints as predicates, or why they cannot be compiled."""
    compiled: dict[int, tuple[Predicate, ...] | InvalidDefinition] = {}
    for segment in segments:
        try:
            compiled[segment.id] = tuple(
                compile_constraint(c, f"constraints[{n}]")
                for n, c in enumerate(segment.constraints)
            )
        except InvalidDefinition as exc:
            compiled[segment.id] = exc
    return compiled


def build_snapshot(
    version: int,
    environment: str,
    flags: Iterable[FlagDef],
    segments: Iterable[SegmentDef] = (),
    *,
    capability: CapabilityModel | None = None,
    segment_labels: Mapping[str, str] | None = None,
    segment_identities: Mapping[str, int] | None = None,
    rng: random.Random | None = None,
) -> Snapshot:
    """Compile an environment's definitions into its snapshot.

    `rng` drives the draws that are random by definition (gradualRolloutRandom, random
    stickiness, clients without a stickiness value); inject a seeded one in tests.
    """
    draw = (rng or random.Random()).random  # noqa: S311 - bucketing draws, not secrets
    compiled_segments = compile_segments(segments)
    defined = {flag.key: flag for flag in flags}
    # Parents first: a parent may not have dependencies of its own, so it is final.
    parents = {
        key: compile_flag(flag, compiled_segments, {}, defined, draw)
        for key, flag in defined.items()
        if not flag.dependencies
    }
    compiled = {
        key: parents[key]
        if key in parents
        else compile_flag(flag, compiled_segments, parents, defined, draw)
        for key, flag in defined.items()
    }
    return Snapshot(
        environment=environment,
        version=version,
        flags=compiled,
        capability=capability,
        segment_labels=dict(segment_labels or {}),
        segment_identities=dict(segment_identities or {}),
    )
