"""evaluate(snapshot, flag_key, context) -> Decision: Unleash semantics, OFREP answers."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

from rollout.engine.capability import assign_segment
from rollout.engine.context import Context
from rollout.engine.hashing import VARIANT_SEED, normalized
from rollout.engine.ladder import Climb, Ladder, Rung, climb, is_profiled
from rollout.engine.types import (
    DEFAULT,
    DISABLED,
    DISABLED_VARIANT,
    ERROR,
    SPLIT,
    STATIC,
    TARGETING_MATCH,
    Decision,
    Flag,
    Rule,
    Snapshot,
    Variant,
    VariantSet,
)

SAVE_DATA_SEGMENT = "save-data"
_rng = random.Random()  # noqa: S311 - variant draws for clients without a stickiness value


def _matching_rule(flag: Flag, ctx: Context) -> tuple[bool, Rule | None]:
    """isEnabled steps 5-6: (enabled, the first matching rule, if any)."""
    if not flag.rules:
        return True, None
    for rule in flag.rules:
        if rule.matches(ctx):
            return True, rule
    return False, None


def _dependencies_hold(flag: Flag, snapshot: Snapshot, ctx: Context) -> bool:
    for dependency in flag.dependencies:
        parent = snapshot.flags.get(dependency.flag_key)
        if parent is None or parent.dependencies:
            return False  # unknown parent, or a chain: only one level is allowed
        parent_on, parent_rule = _is_enabled(parent, snapshot, ctx)
        if not dependency.enabled:
            if parent_on:
                return False
            continue
        if not parent_on:
            return False
        if dependency.variants:
            variant = _pick_variant(parent, parent_rule, ctx)
            name = variant.name if variant is not None else DISABLED_VARIANT
            if name not in dependency.variants:
                return False
    return True


def _is_enabled(flag: Flag, snapshot: Snapshot, ctx: Context) -> tuple[bool, Rule | None]:
    if not flag.enabled or flag.invalid is not None:
        return False, None
    if flag.dependencies and not _dependencies_hold(flag, snapshot, ctx):
        return False, None
    return _matching_rule(flag, ctx)


def _stickiness_value(stickiness: str, ctx: Context) -> str | None:
    if stickiness == "default":
        value = ctx.get("userId")
        return value if value is not None else ctx.get("sessionId")
    return ctx.get(stickiness)


def _weighted(variant_set: VariantSet, ctx: Context) -> Variant | None:
    total = variant_set.total_weight
    if total <= 0:
        return None
    seed = _stickiness_value(variant_set.stickiness, ctx)
    if seed is None:
        target = _rng.randint(1, total)
    else:
        target = normalized(seed, variant_set.group_id, total, VARIANT_SEED)
    running = 0
    for variant in variant_set.variants:
        running += variant.weight
        if running >= target:
            return variant
    return None


def _pick_variant(flag: Flag, rule: Rule | None, ctx: Context) -> Variant | None:
    """getVariant §7 for an enabled flag: rule variants first, then the flag's own."""
    if rule is not None and rule.variants is not None:
        return _weighted(rule.variants, ctx)
    variant_set = flag.variants
    if variant_set is None:
        return None
    if variant_set.with_overrides:
        for variant in variant_set.variants:
            for context_name, values in variant.overrides:
                value = ctx.get(context_name)
                if value is not None and value in values:
                    return variant
    return _weighted(variant_set, ctx)


def _enabled_value(flag: Flag, variant: Variant | None) -> Any:
    if variant is not None and variant.has_value:
        return variant.value
    if flag.kind == "boolean":
        return True
    if variant is not None and flag.kind == "string":
        return variant.name
    return flag.off_value


def _rung_decision(
    flag: Flag, rung: Rung, reason: str, segment: str | None, climb: Climb | None = None
) -> Decision:
    metadata: dict[str, Any] = {"rung": rung.key}
    if segment is not None:
        metadata["segment"] = segment
    unmet = climb.unmet if climb is not None else {}
    if unmet:
        metadata["unmetRequirements"] = "; ".join(
            f"{key}: {', '.join(reasons)}" for key, reasons in unmet.items()
        )
    return Decision(
        flag.key,
        rung.value,
        rung.key,
        reason,
        reason != DISABLED,
        flag.kind,
        metadata=metadata,
        ui_state=rung.ui_state,
        unmet=unmet,
    )


def _decide_ladder(snapshot: Snapshot, flag: Flag, ladder: Ladder, ctx: Context) -> Decision:
    segment = ctx.get("segment")
    if not flag.enabled:
        return _rung_decision(flag, ladder.rungs[-1], DISABLED, segment)
    try:
        in_rollout, _rule = _is_enabled(flag, snapshot, ctx)
        if not is_profiled(ctx):
            # No capability known (no probe, nothing inline): the safe rung, never a guess.
            return _rung_decision(flag, ladder.rungs[ladder.safe], DEFAULT, segment)
        climbed = climb(ladder, ctx, segment, in_rollout)
    except Exception as exc:  # noqa: BLE001 - a failing ladder must still answer safely
        decision = _rung_decision(flag, ladder.rungs[ladder.safe], ERROR, segment)
        return decision._replace(error_code="GENERAL", error_message=f"{type(exc).__name__}: {exc}")
    reason = TARGETING_MATCH if climbed.in_rollout else DEFAULT
    return _rung_decision(flag, climbed.rung, reason, segment, climbed)


def decide(snapshot: Snapshot, flag: Flag, ctx: Context) -> Decision:
    """The decision for a known flag."""
    if flag.ladder is not None:
        return _decide_ladder(snapshot, flag, flag.ladder, ctx)
    if not flag.enabled:
        return Decision(flag.key, flag.off_value, DISABLED_VARIANT, DISABLED, False, flag.kind)
    if flag.invalid is not None:
        return Decision(
            flag.key,
            flag.off_value,
            DISABLED_VARIANT,
            ERROR,
            False,
            flag.kind,
            "GENERAL",
            f"invalid definition: {flag.invalid}",
        )
    enabled, rule = _is_enabled(flag, snapshot, ctx)
    if not enabled:
        return Decision(flag.key, flag.off_value, DISABLED_VARIANT, DEFAULT, False, flag.kind)
    variant = _pick_variant(flag, rule, ctx)
    reason = rule.reason if rule is not None else STATIC
    flag_variants_split = flag.variants is not None and len(flag.variants.variants) > 1
    if flag_variants_split and (rule is None or rule.variants is None):
        reason = SPLIT  # the flag's own weighted variants decided
    return Decision(
        flag.key,
        _enabled_value(flag, variant),
        variant.name if variant is not None else DISABLED_VARIANT,
        reason,
        True,
        flag.kind,
    )


def resolve_segment(snapshot: Snapshot, attributes: Mapping[str, Any]) -> str | None:
    """The client's capability segment: the hard rules, else the nearest centroid."""
    if attributes.get("saveData") is True:
        return SAVE_DATA_SEGMENT  # an explicit user wish, outside the model
    if snapshot.capability is None:
        return None
    return assign_segment(snapshot.capability, attributes)


def with_segment(snapshot: Snapshot, attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    """The context with `segment` set by the server (a client cannot choose its own)."""
    segment = resolve_segment(snapshot, attributes)
    if segment is None and "segment" not in attributes:
        return attributes
    context = dict(attributes)
    if segment is None:
        del context["segment"]
    else:
        context["segment"] = segment
    return context


def evaluate(snapshot: Snapshot, flag_key: str, attributes: Mapping[str, Any]) -> Decision:
    """The decision for one flag; an unknown flag is an ERROR decision FLAG_NOT_FOUND."""
    flag = snapshot.flags.get(flag_key)
    if flag is None:
        return Decision(
            flag_key,
            None,
            DISABLED_VARIANT,
            ERROR,
            False,
            "boolean",
            "FLAG_NOT_FOUND",
            f"flag {flag_key!r} does not exist",
        )
    return decide(snapshot, flag, Context(with_segment(snapshot, attributes)))


def evaluate_all(
    snapshot: Snapshot, attributes: Mapping[str, Any], keys: Iterable[str] | None = None
) -> list[Decision]:
    """Decisions for the given flags (default: every flag), sharing one context."""
    attributes = with_segment(snapshot, attributes)
    ctx = Context(attributes)
    flags = snapshot.flags
    if keys is None:
        return [decide(snapshot, flag, ctx) for flag in flags.values()]
    return [
        decide(snapshot, flags[key], ctx) if key in flags else evaluate(snapshot, key, attributes)
        for key in keys
    ]
