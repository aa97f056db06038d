"""Weighted variants (docs/bucketing.md): overrides first, then a sticky weighted pick."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from rollout.engine.constraints import InvalidDefinition
from rollout.engine.context import Context
from rollout.engine.hashing import VARIANT_SEED, bucket
from rollout.engine.model import VariantDef
from rollout.engine.strategies import Draw
from rollout.engine.types import Decision


def check_variants(variants: Sequence[VariantDef], path: str) -> None:
    """Raise InvalidDefinition for weights no engine can pick from (negative, or summing to 0)."""
    for index, variant in enumerate(variants):
        if variant.weight < 0:
            raise InvalidDefinition(f"{path}[{index}].weight", "must be a whole number ≥ 0")
    if variants and sum(v.weight for v in variants) == 0:
        raise InvalidDefinition(path, "the weights add up to 0; give at least one a weight")


def is_split(variants: Sequence[VariantDef]) -> bool:
    """Whether the weights split clients: two or more variants can be picked."""
    return sum(1 for v in variants if v.weight > 0) > 1


@dataclass(frozen=True, slots=True)
class VariantPicker:
    """One variant list compiled with its group and stickiness, each outcome prebuilt."""

    overrides: tuple[tuple[str, frozenset[str], Decision], ...]
    stickiness: str
    prefix: str  # "<group>:"
    total: int
    cumulative: tuple[int, ...]  # running sums of the weights
    decisions: tuple[Decision, ...]  # one per variant, for a weighted pick
    draw: Draw
    split: bool  # more than one variant with weight: a pick needs something to stick to

    def pick(self, ctx: Context) -> Decision:
        """The decision of the variant this client gets."""
        for name, values, decision in self.overrides:
            if ctx.get(name) in values:
                return decision
        if self.stickiness == "default":
            seed = ctx.get("userId")
            if seed is None:
                seed = ctx.get("sessionId")
        else:
            seed = ctx.get(self.stickiness)
        if seed is None:
            if self.split:  # one weighted variant is no split: nothing to decide
                ctx.unsticky("userId" if self.stickiness == "default" else self.stickiness)
            target = int(self.draw() * self.total) + 1  # not sticky: nothing to stick to
        else:
            target = bucket(self.prefix, seed, self.total, VARIANT_SEED)
        # The first variant whose running sum reaches the target; zero weights never do.
        return self.decisions[bisect_left(self.cumulative, target)]


def variant_picker(
    variants: Sequence[VariantDef],
    *,
    group_id: str,
    stickiness: str,
    weighted: Sequence[Decision],
    overridden: Sequence[Decision],
    draw: Draw,
) -> VariantPicker:
    """A picker over checked variants (see check_variants), given each one's decisions."""
    return VariantPicker(
        overrides=tuple(
            (name, frozenset(values), overridden[index])
            for index, variant in enumerate(variants)
            for name, values in variant.overrides
        ),
        stickiness=stickiness,
        prefix=f"{group_id}:",
        total=sum(v.weight for v in variants),
        cumulative=tuple(accumulate(v.weight for v in variants)),
        decisions=tuple(weighted),
        draw=draw,
        split=sum(1 for v in variants if v.weight > 0) > 1,
    )
