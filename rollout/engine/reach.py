"""Reach per rung: of a segment's clients, how many can run each rung of each ladder flag.

What the segments page shows beside each segment, so that a release manager sees what a
per-segment rollout of a rung would reach before starting it. "Can run" is what decisions
serve on capability alone (settling.capable): the requirements met by what the client
reports, its measured network and the confident estimates, as the served snapshot reads
them; availability (rollouts, the kill switch) and runtime hints are left out, because they
change by the minute and are not a property of the segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rollout.engine.evaluate import capability_context
from rollout.engine.settling import capable
from rollout.engine.types import Snapshot


@dataclass
class SegmentReach:
    """The clients of one segment counted, and per ladder flag the count per rung (best
    first, every rung of the ladder present)."""

    clients: int = 0
    rungs: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        # Pairs keep the ladder's order through JSON (and PostgreSQL's jsonb) unchanged.
        return {
            "clients": self.clients,
            "flags": {
                flag: [[rung, n] for rung, n in counts.items()]
                for flag, counts in self.rungs.items()
            },
        }


def tally(snapshot: Snapshot, population: Iterable[Mapping[str, Any]]) -> dict[int, SegmentReach]:
    """Per segment identity, how many of the `population`'s clients (profile attributes)
    can run each rung. Clients the snapshot places in no learned segment are not counted."""
    ladders = [
        (key, flag.ladder) for key, flag in snapshot.flags.items() if flag.ladder is not None
    ]
    identities = snapshot.segment_identities
    reach: dict[int, SegmentReach] = {}
    for attributes in population:
        ctx = capability_context(snapshot, attributes)
        identity = identities.get(ctx.get("segment") or "")
        if identity is None:
            continue
        counted = reach.get(identity)
        if counted is None:
            counted = reach[identity] = SegmentReach(
                rungs={
                    key: dict.fromkeys((r.key for r in ladder.rungs), 0) for key, ladder in ladders
                }
            )
        counted.clients += 1
        for key, ladder in ladders:
            counted.rungs[key][ladder.rungs[capable(ladder, ctx)].key] += 1
    return reach
