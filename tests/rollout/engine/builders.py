"""Small builders for engine tests: one flag, one rule, one constraint."""

from __future__ import annotations

import random
from typing import Any

from rollout.engine import (
    ConstraintDef,
    Decision,
    FlagDef,
    RuleDef,
    SegmentDef,
    Snapshot,
    build_snapshot,
    evaluate,
)


def snapshot_of(*flags: FlagDef, segments: tuple[SegmentDef, ...] = (), seed: int = 7) -> Snapshot:
    """A snapshot of `flags`, with a seeded RNG for the draws that are random by definition."""
    return build_snapshot(1, "test", flags, segments, rng=random.Random(seed))


def decide(flag: FlagDef, context: dict[str, Any] | None = None, **kwargs: Any) -> Decision:
    """The decision for a one-flag snapshot."""
    return evaluate(snapshot_of(flag, **kwargs), flag.key, context or {})


def matches(constraint: ConstraintDef, context: dict[str, Any]) -> bool:
    """Whether a flag guarded by only `constraint` is on for `context`."""
    flag = FlagDef("f", rules=(RuleDef(constraints=(constraint,)),))
    return decide(flag, context).enabled
