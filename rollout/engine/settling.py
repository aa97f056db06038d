"""No erratic rungs: the rung a client's probes have settled on, per ladder flag.

A client on a jittery link or with a noisy benchmark must not flap between rungs. The server
keeps, with the client's stored profile, the rung of each ladder flag its probes have settled
on, updated at every probe (`next_settled`) and read by every decision from that profile:

- a first probe settles on the best rung its capability meets;
- an upgrade (a better rung met) is taken only once UPGRADE_PROBES probes in a row earned the
  same better rung: a lucky measurement is not enough (edgeflags.js re-measures the network
  every 5 minutes, so an upgrade takes at least that long);
- the settled rung is kept while its requirements hold with thresholds loosened by
  ladder.SETTLE_TOLERANCE on the noisy signals (RTT, downlink, benchmark); below that, the
  client drops at once to the best rung it does meet.

Capability only: availability (rollouts, the kill switch) and runtime hints (offline,
saveData, low battery, compute pressure) are applied on top by every decision, at once, and
never settle. The state is the server's: a client's context cannot set it (api/client.py
drops a `settledRungs` it sends).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from capability_probe.vocabulary import SETTLED_RUNGS as SETTLED_RUNGS
from rollout.engine.context import Context
from rollout.engine.ladder import Ladder

UPGRADE_PROBES = 2

State = dict[str, Any]  # {"rung": key} and, while an upgrade is pending, "pending", "count"


def _meets(ladder: Ladder, ctx: Context, index: int, settled: bool) -> bool:
    rung = ladder.rungs[index]
    return all(
        r.unmet_reason(ctx, ladder.min_confidence, set(), settled=settled) is None
        for r in rung.requirements
    )


def capable(ladder: Ladder, ctx: Context) -> int:
    """The index of the best rung whose requirements the client meets (availability and
    runtime hints aside); the last rung has none, so there is always one."""
    return next(i for i in range(len(ladder.rungs)) if _meets(ladder, ctx, i, settled=False))


def settled_index(ladder: Ladder, state: Any) -> int | None:
    """The index of the rung a stored state names; None for no state or an unknown rung."""
    if not isinstance(state, Mapping):
        return None
    key = state.get("rung")
    return next((i for i, rung in enumerate(ladder.rungs) if rung.key == key), None)


def next_settled(ladder: Ladder, ctx: Context, previous: Any) -> State:
    """The state after a probe whose capability `ctx` carries, from the `previous` one."""
    best = capable(ladder, ctx)
    held = settled_index(ladder, previous)
    if held is None:
        return {"rung": ladder.rungs[best].key}
    if best < held:
        candidate = ladder.rungs[best].key
        assert isinstance(previous, Mapping)
        count = int(previous.get("count") or 0) + 1 if previous.get("pending") == candidate else 1
        if count >= UPGRADE_PROBES:
            return {"rung": candidate}
        return {"rung": ladder.rungs[held].key, "pending": candidate, "count": count}
    if best == held or _meets(ladder, ctx, held, settled=True):
        return {"rung": ladder.rungs[held].key}
    return {"rung": ladder.rungs[best].key}
