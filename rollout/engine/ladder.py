"""Degradation ladders: every client gets the best rung it can run.

A ladder is ordered best first (normally edge -> cloud -> lite -> off). A rung is served
when it is available to the client's segment and the client meets its requirements
(constraints over capability attributes). Runtime hints can only take rungs away: a low,
unplugged battery or serious compute pressure removes on-device rungs, being offline
removes cloud rungs, save-data removes both. The last rung has no requirements, so every
client can always be served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollout.engine.constraints import Predicate, compile_constraint
from rollout.engine.context import Context
from rollout.engine.shapes import constraint_from_json

LOW_BATTERY = 0.2
# A client that reports none of these has not been profiled (no probe, nothing inline).
CAPABILITY_FIELDS = (
    "memoryGb",
    "cores",
    "webgpu",
    "benchmarkMs",
    "rttMs",
    "downlinkMbps",
    "effectiveType",
    "saveData",
)
PRESSURE_TOO_HIGH = frozenset({"serious", "critical"})
# What a rung needs at run time: the device's own compute, or the network.
RUNS_ON = frozenset({"device", "cloud", "none"})
DEFAULT_RUNS_ON = {"edge": "device", "cloud": "cloud"}


@dataclass(frozen=True, slots=True)
class Requirement:
    """One constraint of a rung, with the words that explain it when unmet."""

    check: Predicate
    context_name: str
    explanation: str


@dataclass(frozen=True, slots=True)
class Rung:
    key: str
    value: Any
    ui_state: Mapping[str, Any]
    requirements: tuple[Requirement, ...]
    runs_on: str  # device, cloud or none


@dataclass(frozen=True, slots=True)
class Ladder:
    rungs: tuple[Rung, ...]
    baseline: int  # index of the rung clients outside the rollout get at best
    safe: int  # index of the rung served when a client cannot be profiled or evaluation fails
    available_segments: frozenset[str]  # segments the upper rungs are available to ("*": all)

    def rung(self, key: str) -> Rung | None:
        """The rung called `key`, if any."""
        return next((r for r in self.rungs if r.key == key), None)


_SYMBOLS = {
    "NUM_GTE": "≥",
    "NUM_GT": ">",
    "NUM_LTE": "≤",
    "NUM_LT": "<",
    "NUM_EQ": "=",
    "IN": "in",
    "NOT_IN": "not in",
}


def explain(raw: Mapping[str, Any]) -> str:
    """A requirement in words: 'memoryGb ≥ 4', 'webgpu in [true]'."""
    operator = str(raw.get("operator"))
    symbol = _SYMBOLS.get(operator, operator)
    target = raw.get("value") if raw.get("value") is not None else list(raw.get("values") or [])
    if isinstance(target, list):
        target = "[" + ", ".join(str(v) for v in target) + "]"
    inverted = "not " if raw.get("inverted") else ""
    return f"{inverted}{raw.get('contextName')} {symbol} {target}"


def compile_ladder(raw: Mapping[str, Any]) -> Ladder:
    """A ladder from its document form; raises InvalidDefinition for a bad requirement."""
    rungs = []
    for index, item in enumerate(raw.get("rungs") or []):
        key = str(item["key"])
        requirements = tuple(
            Requirement(
                compile_constraint(
                    constraint_from_json(c), f"ladder.rungs[{index}].requirements[{number}]"
                ),
                str(c.get("contextName")),
                explain(c),
            )
            for number, c in enumerate(item.get("requirements") or [])
        )
        runs_on = str(item.get("runsOn") or DEFAULT_RUNS_ON.get(key, "none"))
        rungs.append(
            Rung(
                key, item.get("value", key), dict(item.get("uiState") or {}), requirements, runs_on
            )
        )
    keys = [r.key for r in rungs]
    baseline = keys.index(raw["baseline"]) if raw.get("baseline") in keys else len(rungs) - 1
    safe = keys.index(raw["safe"]) if raw.get("safe") in keys else len(rungs) - 1
    return Ladder(
        rungs=tuple(rungs),
        baseline=baseline,
        safe=safe,
        available_segments=frozenset(str(s) for s in raw.get("availableSegments") or []),
    )


def is_profiled(ctx: Context) -> bool:
    """Whether the context carries any capability signal at all."""
    return any(ctx.raw(name) is not None for name in CAPABILITY_FIELDS)


def removed_by_hints(ctx: Context) -> frozenset[str]:
    """What the runtime hints rule out: 'device' and/or 'cloud' (never adds anything)."""
    removed = set()
    battery = ctx.raw("batteryLevel")
    if (
        isinstance(battery, (int, float))
        and battery < LOW_BATTERY
        and ctx.raw("charging") is not True
    ):
        removed.add("device")
    if ctx.raw("computePressure") in PRESSURE_TOO_HIGH:
        removed.add("device")
    if ctx.raw("online") is False:
        removed.add("cloud")
    if ctx.raw("saveData") is True:
        removed.update(("device", "cloud"))
    return frozenset(removed)


@dataclass(frozen=True, slots=True)
class Climb:
    """The outcome of a ladder decision."""

    rung: Rung
    in_rollout: bool
    unmet: Mapping[str, tuple[str, ...]]  # rung key -> unmet requirements, for rungs above


def climb(ladder: Ladder, ctx: Context, segment: str | None, in_rollout: bool) -> Climb:
    """The best rung available to the client's segment whose requirements it meets."""
    available = in_rollout and (
        "*" in ladder.available_segments
        or (segment is not None and segment in ladder.available_segments)
    )
    removed = removed_by_hints(ctx)
    unmet: dict[str, tuple[str, ...]] = {}
    start = 0 if available else ladder.baseline
    for index in range(start, len(ladder.rungs)):
        rung = ladder.rungs[index]
        reasons = []
        if rung.runs_on in removed:
            reasons.append(_hint_reason(rung.runs_on, ctx))
        reasons += [r.explanation for r in rung.requirements if not r.check(ctx)]
        if not reasons or index == len(ladder.rungs) - 1:
            return Climb(rung, available, unmet)
        unmet[rung.key] = tuple(reasons)
    raise AssertionError("unreachable: the last rung is always served")


def _hint_reason(runs_on: str, ctx: Context) -> str:
    if ctx.raw("saveData") is True:
        return "saveData is on"
    if runs_on == "cloud":
        return "offline"
    if ctx.raw("computePressure") in PRESSURE_TOO_HIGH:
        return f"compute pressure {ctx.raw('computePressure')}"
    return "battery low and not charging"
