"""Degradation ladders: every client gets the best rung it can run.

A ladder is ordered best first (normally edge -> cloud -> lite -> off). A rung is served
when it is available to the client and the client meets its requirements (constraints over
capability attributes). Without a rollout every rung is available. Under a rollout, each
capability segment has a percentage: a client whose bucket (murmur3 of
"<flag>:<targetingKey>", 1..100, sticky across stages) is within it is in the treatment arm
and may climb from the target rung; everyone else in the segment is in the control arm and
starts at the baseline rung. Runtime hints can only take rungs away: a low,
unplugged battery or serious compute pressure removes on-device rungs, being offline
removes cloud rungs, save-data removes both. The last rung has no requirements, so every
client can always be served.

No erratic rungs (rollout/engine/settling.py): a client whose stored profile has settled on a
rung keeps it while its noisy measurements (RTT, downlink, benchmark) stay within
SETTLE_TOLERANCE of the thresholds, and climbs above it only once its probes have earned the
better rung UPGRADE_PROBES times in a row. Runtime hints still take rungs away at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from capability_probe.vocabulary import (
    BATTERY_LEVEL,
    BENCHMARK_MS,
    CHARGING,
    COMPUTE_PRESSURE,
    DOWNLINK_MBPS,
    MEASURED_DOWNLINK_MBPS,
    MEASURED_RTT_MS,
    ONLINE,
    PROFILING_SIGNALS,
    RTT_MS,
    SAVE_DATA,
)
from rollout.engine.constraints import Predicate, compile_constraint
from rollout.engine.context import Context
from rollout.engine.edge_models import HELD_VERSION, EdgeModel, compile_model
from rollout.engine.hashing import normalized
from rollout.engine.literals import parse_number_literal
from rollout.engine.shapes import constraint_from_json

LOW_BATTERY = 0.2
# A requirement is met by an estimate (a signal the client does not report, estimated by
# rollout/engine/estimates.py) only when it is at least this probable; a flag may set its own.
DEFAULT_MIN_CONFIDENCE = 0.9
# A settled rung holds while its requirements on noisy signals hold with thresholds this much
# looser (RTT ≤ 300 ms holds up to 480 ms; a benchmark ≤ 60 ms up to 96 ms): a jittery link
# or a device warming up does not flap. Discrete signals (memory, WebGPU) are not loosened.
SETTLE_TOLERANCE = 0.6
NOISY_SIGNALS = frozenset(
    f.wire for f in (RTT_MS, DOWNLINK_MBPS, MEASURED_RTT_MS, MEASURED_DOWNLINK_MBPS, BENCHMARK_MS)
)
_LOOSER = {
    "NUM_LT": 1 + SETTLE_TOLERANCE,
    "NUM_LTE": 1 + SETTLE_TOLERANCE,
    "NUM_GT": 1 / (1 + SETTLE_TOLERANCE),
    "NUM_GTE": 1 / (1 + SETTLE_TOLERANCE),
}
# A client that reports none of these has not been profiled (no probe, nothing inline).
CAPABILITY_FIELDS = PROFILING_SIGNALS
PRESSURE_TOO_HIGH = frozenset({"serious", "critical"})  # of the vocabulary's PRESSURE_STATES
# The runtime hints read here (capability_probe/vocabulary.py).
_BATTERY, _CHARGING = BATTERY_LEVEL.wire, CHARGING.wire
_PRESSURE, _ONLINE, _SAVE_DATA = COMPUTE_PRESSURE.wire, ONLINE.wire, SAVE_DATA.wire
# What a rung needs at run time: the device's own compute, or the network.
RUNS_ON = frozenset({"device", "cloud", "none"})
DEFAULT_RUNS_ON = {"edge": "device", "cloud": "cloud"}


@dataclass(frozen=True, slots=True)
class Requirement:
    """One constraint of a rung, with the words that explain it when unmet."""

    check: Predicate
    context_name: str
    explanation: str
    # Whether the requirement holds for one estimated class (a constraint reads one attribute,
    # so the answer depends on the value alone): filled on first use.
    _verdicts: dict[float, bool] = field(default_factory=dict, compare=False, repr=False)
    # The requirement loosened by SETTLE_TOLERANCE, for the rung a client has settled on
    # (None: it reads no noisy signal, and holds as it is).
    settled_check: Predicate | None = None

    def holds_for(self, value: float) -> bool:
        """Whether the requirement holds when its attribute is `value`."""
        verdict = self._verdicts.get(value)
        if verdict is None:
            verdict = self._verdicts[value] = self.check(Context({self.context_name: value}))
        return verdict

    def unmet_reason(
        self, ctx: Context, min_confidence: float, estimated: set[str], settled: bool = False
    ) -> str | None:
        """None when met; else why not. An attribute the client does not report is read from
        its estimate, when there is one, and named in `estimated`. `settled`: the client has
        settled on this rung, so a noisy signal is held to the looser threshold."""
        name = self.context_name
        estimate = ctx.estimates.get(name) if ctx.estimates else None
        if estimate is None or ctx.raw(name) is not None:
            check = self.settled_check if settled and self.settled_check else self.check
            return None if check(ctx) else self.explanation
        estimated.add(name)
        confidence = estimate.confidence(self.holds_for)
        if min_confidence < 1.0 and confidence >= min_confidence:
            return None  # 1.0: this flag never lets an estimate meet a requirement
        return (
            f"{self.explanation} (estimated: {confidence:.0%} likely, {min_confidence:.0%} needed)"
        )


@dataclass(frozen=True, slots=True)
class Rung:
    key: str
    value: Any
    ui_state: Mapping[str, Any]
    requirements: tuple[Requirement, ...]  # the rung's own and its model's, all required
    runs_on: str  # device, cloud or none
    model: EdgeModel | None = None  # on-device rungs: the model version it runs
    # The model's download conditions, for a client that does not hold the version yet.
    download: tuple[Requirement, ...] = ()


TREATMENT = "treatment"
CONTROL = "control"


@dataclass(frozen=True, slots=True)
class SegmentStage:
    """Where one segment's rollout stands: what share of it gets the target rung."""

    percentage: int  # 0..100; 0 when pending or rolled back
    stage: int  # index into the plan's stages
    state: str  # pending, ramping, paused, held, complete, rolled_back


@dataclass(frozen=True, slots=True)
class Rollout:
    """A progressive rollout of a ladder's target rung, segment by segment."""

    target: int  # index of the best rung the treatment arm may get (a model's: its rung)
    segments: Mapping[str, SegmentStage]  # segments not listed: control, untracked
    # A model rollout: the target rung running the version being ramped. Every rung stays
    # available; the arm chooses the version (rollout/engine/edge_models.py).
    model_rung: Rung | None = None


@dataclass(frozen=True, slots=True)
class Ladder:
    rungs: tuple[Rung, ...]
    baseline: int  # index of the rung clients outside the rollout get at best
    safe: int  # index of the rung served when a client cannot be profiled or evaluation fails
    rollout: Rollout | None = None  # None: every rung is generally available
    min_confidence: float = DEFAULT_MIN_CONFIDENCE  # for requirements read from estimates

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


def _requirement(raw: Mapping[str, Any], path: str) -> Requirement:
    constraint = constraint_from_json(raw)
    settled_check = None
    factor = _LOOSER.get(constraint.operator)
    if factor is not None and constraint.context_name in NOISY_SIGNALS and not constraint.inverted:
        target = parse_number_literal(constraint.value or "")
        if target is not None and target > 0:
            looser = dataclasses.replace(constraint, value=repr(float(target) * factor))
            settled_check = compile_constraint(looser, path)
    return Requirement(
        compile_constraint(constraint, path),
        str(raw.get("contextName")),
        explain(raw),
        settled_check=settled_check,
    )


def _compile_rung(item: Mapping[str, Any], path: str, model_raw: Any = None) -> Rung:
    """A rung from its document form, running `model_raw` (default: the rung's own model)."""
    key = str(item["key"])
    requirements = tuple(
        _requirement(c, f"{path}.requirements[{number}]")
        for number, c in enumerate(item.get("requirements") or [])
    )
    runs_on = str(item.get("runsOn") or DEFAULT_RUNS_ON.get(key, "none"))
    model_raw = item.get("model") if model_raw is None else model_raw
    model: EdgeModel | None = None
    download: tuple[Requirement, ...] = ()
    if model_raw:
        model, model_requirements, download = _compile_model(model_raw, f"{path}.model")
        # A model asking what the rung already asks is asked once.
        asked = {r.explanation for r in requirements}
        requirements += tuple(r for r in model_requirements if r.explanation not in asked)
    return Rung(
        key,
        item.get("value", key),
        dict(item.get("uiState") or {}),
        requirements,
        runs_on,
        model,
        download,
    )


def compile_ladder(raw: Mapping[str, Any]) -> Ladder:
    """A ladder from its document form; raises InvalidDefinition for a bad requirement."""
    items = list(raw.get("rungs") or [])
    rungs = [_compile_rung(item, f"ladder.rungs[{index}]") for index, item in enumerate(items)]
    keys = [r.key for r in rungs]
    baseline = keys.index(raw["baseline"]) if raw.get("baseline") in keys else len(rungs) - 1
    safe = keys.index(raw["safe"]) if raw.get("safe") in keys else len(rungs) - 1
    return Ladder(
        rungs=tuple(rungs),
        baseline=baseline,
        safe=safe,
        rollout=_compile_rollout(raw.get("rollout"), items, keys, baseline),
        min_confidence=float(raw.get("minConfidence", DEFAULT_MIN_CONFIDENCE)),
    )


def _compile_model(
    raw: Mapping[str, Any], path: str
) -> tuple[EdgeModel, tuple[Requirement, ...], tuple[Requirement, ...]]:
    """A rung's model, its requirements to run and its conditions to download."""
    run = tuple(
        _requirement(c, f"{path}.requirements[{n}]")
        for n, c in enumerate(raw.get("requirements") or [])
    )
    download = tuple(
        _requirement(c, f"{path}.downloadRequirements[{n}]")
        for n, c in enumerate(raw.get("downloadRequirements") or [])
    )
    return compile_model(raw), run, download


def _compile_rollout(
    raw: Mapping[str, Any] | None, items: list[Any], keys: list[str], baseline: int
) -> Rollout | None:
    if raw is None:
        return None
    target = keys.index(raw["target"]) if raw.get("target") in keys else 0
    segments = {
        str(key): SegmentStage(
            percentage=max(0, min(100, int(item.get("percentage", 0)))),
            stage=int(item.get("stage", 0)),
            state=str(item.get("state", "pending")),
        )
        for key, item in (raw.get("segments") or {}).items()
    }
    model_rung = None
    if raw.get("model"):
        # A model rollout: the target rung running the new version (the rung's own
        # requirements and the version's), for the treatment arm.
        model_rung = _compile_rung(items[target], "ladder.rollout", raw["model"])
        return Rollout(target=target, segments=segments, model_rung=model_rung)
    return Rollout(target=min(target, baseline), segments=segments)


def is_profiled(ctx: Context) -> bool:
    """Whether the context carries any capability signal at all."""
    return any(ctx.raw(name) is not None for name in CAPABILITY_FIELDS)


def removed_by_hints(ctx: Context) -> frozenset[str]:
    """What the runtime hints rule out: 'device' and/or 'cloud' (never adds anything)."""
    removed = set()
    battery = ctx.raw(_BATTERY)
    if (
        isinstance(battery, (int, float))
        and battery < LOW_BATTERY
        and ctx.raw(_CHARGING) is not True
    ):
        removed.add("device")
    if ctx.raw(_PRESSURE) in PRESSURE_TOO_HIGH:
        removed.add("device")
    if ctx.raw(_ONLINE) is False:
        removed.add("cloud")
    if ctx.raw(_SAVE_DATA) is True:
        removed.update(("device", "cloud"))
    return frozenset(removed)


@dataclass(frozen=True, slots=True)
class Climb:
    """The outcome of a ladder decision."""

    rung: Rung
    in_rollout: bool  # the client may climb above the baseline
    unmet: Mapping[str, tuple[str, ...]]  # rung key -> unmet requirements, for rungs above
    arm: str | None = None  # treatment/control when the segment's rollout is tracked
    stage: SegmentStage | None = None
    estimated: tuple[str, ...] = ()  # attributes read from estimates on the way down
    held_version: Any = None  # the model version the client holds (served model rungs only)


def rollout_arm(
    rollout: Rollout, flag_key: str, ctx: Context, segment: str | None
) -> tuple[str, SegmentStage | None]:
    """The client's arm in its segment's rollout (control without a targeting key)."""
    stage = rollout.segments.get(segment) if segment is not None else None
    if stage is None or stage.percentage <= 0:
        return CONTROL, stage
    key = ctx.get("targetingKey")
    if not key:
        return CONTROL, stage
    in_treatment = stage.percentage >= 100 or normalized(str(key), flag_key) <= stage.percentage
    return (TREATMENT if in_treatment else CONTROL), stage


def climb(
    ladder: Ladder,
    ctx: Context,
    segment: str | None,
    in_rollout: bool,
    flag_key: str = "",
    settled: int | None = None,
    removed_also: frozenset[str] = frozenset(),
    from_index: int | None = None,
) -> Climb:
    """The best rung available to the client whose requirements it meets.

    `settled`: the index of the rung the client's probes have settled on (settling.py):
    rungs above it wait for the upgrade to be earned, and it holds with looser thresholds.
    `removed_also`: what to take away besides the context's hints ("cloud": as if offline).
    `from_index`: start there instead (the rungs above are known to be out of reach).
    """
    arm: str | None = None
    stage: SegmentStage | None = None
    start = 0 if in_rollout else ladder.baseline
    available = in_rollout
    if in_rollout and ladder.rollout is not None:
        arm, stage = rollout_arm(ladder.rollout, flag_key, ctx, segment)
        if ladder.rollout.model_rung is None:  # a model rollout leaves every rung available
            available = arm == TREATMENT
            start = ladder.rollout.target if available else ladder.baseline
        if stage is None:
            arm = None  # a segment outside the plan is not measured
    if from_index is not None:
        start = max(start, from_index)
    removed = removed_by_hints(ctx) | removed_also if removed_also else removed_by_hints(ctx)
    unmet: dict[str, tuple[str, ...]] = {}
    estimated: set[str] = set()
    estimates = ctx.estimates
    for index in range(start, len(ladder.rungs)):
        rung = ladder.rungs[index]
        reasons = []
        if rung.runs_on in removed:
            reasons.append(_hint_reason(rung.runs_on, ctx, removed_also))
        here = index == settled
        for requirement in rung.requirements:
            if estimates or here:
                reason = requirement.unmet_reason(ctx, ladder.min_confidence, estimated, here)
                if reason is not None:
                    reasons.append(reason)
            elif not requirement.check(ctx):  # the common case, without a call more
                reasons.append(requirement.explanation)
        model = rung.model
        if rung.download and model is not None and model.needs_download(ctx.raw(HELD_VERSION)):
            reasons.extend(
                f"download of {model.name} {model.version}: {r.explanation}"
                for r in rung.download
                if not r.check(ctx)
            )
        if settled is not None and index < settled and not reasons:
            # Met by this probe, but not yet by enough of them in a row.
            reasons.append(f"settled on {ladder.rungs[settled].key}: upgrade not yet earned")
        if not reasons or index == len(ladder.rungs) - 1:
            held = ctx.raw(HELD_VERSION) if rung.model is not None else None
            return Climb(rung, available, unmet, arm, stage, tuple(sorted(estimated)), held)
        unmet[rung.key] = tuple(reasons)
    raise AssertionError("unreachable: the last rung is always served")


def with_model_arm(ladder: Ladder, climbed: Climb, ctx: Context) -> Climb:
    """Under a model rollout, the version the client runs: a treatment client on the target
    rung gets the new version, a control client keeps the current one. Only clients on that
    rung who could run either are measured (`arm`); the others keep the current version
    unmeasured, in both arms alike, so that the arms compare like with like."""
    rollout = ladder.rollout
    if rollout is None or rollout.model_rung is None or climbed.arm is None:
        return climbed
    new = rollout.model_rung
    if climbed.rung is not ladder.rungs[rollout.target] or not _can_run(new, ladder, ctx):
        return dataclasses.replace(climbed, arm=None)
    if climbed.arm == TREATMENT:
        return dataclasses.replace(climbed, rung=new)
    return climbed


def _can_run(rung: Rung, ladder: Ladder, ctx: Context) -> bool:
    """Whether the client meets the rung's requirements (and, if it does not hold the
    rung's model version, its download conditions)."""
    for requirement in rung.requirements:
        if requirement.unmet_reason(ctx, ladder.min_confidence, set()) is not None:
            return False
    model = rung.model
    if model is not None and rung.download and model.needs_download(ctx.raw(HELD_VERSION)):
        return all(r.check(ctx) for r in rung.download)
    return True


def _hint_reason(runs_on: str, ctx: Context, removed_also: frozenset[str] = frozenset()) -> str:
    if runs_on in removed_also:
        return "offline" if runs_on == "cloud" else f"{runs_on} unavailable"
    if ctx.raw(_SAVE_DATA) is True:
        return f"{_SAVE_DATA} is on"
    if runs_on == "cloud":
        return "offline"
    if ctx.raw(_PRESSURE) in PRESSURE_TOO_HIGH:
        return f"compute pressure {ctx.raw(_PRESSURE)}"
    return "battery low and not charging"
