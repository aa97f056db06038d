"""evaluate(snapshot, flag_key, context) -> Decision: Unleash semantics, OFREP answers."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from capability_probe.vocabulary import SAVE_DATA, SAVE_DATA_SEGMENT
from rollout.engine.capability import assign_completed, assign_segment
from rollout.engine.context import Context, StickinessMissing
from rollout.engine.estimates import Estimate, effective_network
from rollout.engine.ladder import Climb, Ladder, Rung, climb, is_profiled, with_model_arm
from rollout.engine.model import DISABLED_VARIANT
from rollout.engine.settling import SETTLED_RUNGS, next_settled, settled_index
from rollout.engine.types import (
    DEFAULT,
    DISABLED,
    ERROR,
    FLAG_NOT_FOUND,
    GENERAL,
    INVALID_CONTEXT,
    SPLIT,
    TARGETING_KEY_MISSING,
    TARGETING_MATCH,
    Decision,
    Dependency,
    Flag,
    Snapshot,
)

logger = logging.getLogger(__name__)

# What a client is told when its decision failed: the safe rung, and nothing of the cause
# (exception text can carry rule contents or other clients' values); the cause is logged.
FAILED_DETAILS = "the flag could not be evaluated; the safe rung is served (logged on the server)"
_LOG_EVERY_S = 60.0
_last_logged: dict[tuple[str, str], float] = {}


def _log_failure(flag_key: str, exc: Exception) -> None:
    """Log a failed evaluation with its traceback, at most once a minute per flag and kind
    of failure: a broken flag fails every request, and one line a minute says so."""
    where = (flag_key, type(exc).__name__)
    now = time.monotonic()
    if now - _last_logged.get(where, -_LOG_EVERY_S) < _LOG_EVERY_S:
        return
    if len(_last_logged) > 10_000:
        _last_logged.clear()
    _last_logged[where] = now
    logger.error("flag %s: evaluation failed, safe rung served", flag_key, exc_info=exc)


def _holds(dependency: Dependency, ctx: Context) -> bool:
    """A dependency: the parent, evaluated with the child's context, is as the child requires."""
    parent = decide(dependency.parent, ctx)
    if not dependency.enabled:
        return not parent.enabled
    if not parent.enabled:
        return False
    return not dependency.variants or parent.variant in dependency.variants


def decide(flag: Flag, ctx: Context) -> Decision:
    """Unleash's isEnabled and getVariant of a known flag, as one decision (docs/bucketing.md)."""
    if not flag.active:
        return flag.off
    for dependency in flag.dependencies:
        if not _holds(dependency, ctx):
            return flag.off
    for rule in flag.rules:
        if rule.matches(ctx):
            pick = rule.pick
            return rule.decision if pick is None else pick(ctx)
    return flag.no_match


def _rung_decision(
    flag: Flag,
    rung: Rung,
    reason: str,
    segment: str | None,
    climbed: Climb | None = None,
    offline: Decision | None = None,
) -> Decision:
    metadata: dict[str, Any] = {"rung": rung.key}
    if segment is not None:
        metadata["segment"] = segment
    if climbed is not None and climbed.arm is not None and climbed.stage is not None:
        # What a client echoes in its telemetry so that outcomes land in the right arm.
        metadata["arm"] = climbed.arm
        metadata["stage"] = climbed.stage.stage
        metadata["percentage"] = climbed.stage.percentage
        metadata["rolloutState"] = climbed.stage.state
    if climbed is not None and climbed.estimated:
        # OFREP metadata holds primitives only: the names, comma-separated.
        metadata["estimated"] = ",".join(climbed.estimated)
    model = None
    if rung.model is not None and climbed is not None:
        model = rung.model.served(climbed.held_version)
    unmet = climbed.unmet if climbed is not None else {}
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
        offline=offline,
        model=model,
    )


def _decide_ladder(flag: Flag, ladder: Ladder, ctx: Context) -> Decision:
    segment = ctx.get("segment")
    if not flag.enabled:
        return _rung_decision(flag, ladder.rungs[-1], DISABLED, segment)
    try:
        in_rollout = decide(flag, ctx).enabled
        if not is_profiled(ctx):
            # No capability known (no probe, nothing inline): the safe rung, never a guess.
            return _rung_decision(flag, ladder.rungs[ladder.safe], DEFAULT, segment)
        settled = settled_index(ladder, settled_states_of(ctx).get(flag.key))
        climbed = climb(ladder, ctx, segment, in_rollout, flag.key, settled)
        if ladder.rollout is not None and ladder.rollout.model_rung is not None:
            climbed = with_model_arm(ladder, climbed, ctx)
        offline = None
        if climbed.rung.runs_on == "cloud":
            # Offline, the rungs above stay out of reach: go on below the one served.
            below = ladder.rungs.index(climbed.rung) + 1
            offline = climb(ladder, ctx, segment, in_rollout, flag.key, settled, _OFFLINE, below)
    except StickinessMissing as missing:
        return _unsticky(_rung_decision(flag, ladder.rungs[ladder.safe], ERROR, segment), missing)
    except Exception as exc:  # noqa: BLE001 - a failing ladder must still answer safely
        _log_failure(flag.key, exc)
        decision = _rung_decision(flag, ladder.rungs[ladder.safe], ERROR, segment)
        return dataclasses.replace(decision, error_code=GENERAL, error_message=FAILED_DETAILS)
    stage = climbed.stage
    if stage is not None and 0 < stage.percentage < 100:
        reason = SPLIT  # the client's bucket decided its arm
    else:
        reason = TARGETING_MATCH if climbed.in_rollout else DEFAULT
    if offline is None:
        return _rung_decision(flag, climbed.rung, reason, segment, climbed)
    alternative = _rung_decision(flag, offline.rung, reason, segment, offline)
    return _rung_decision(flag, climbed.rung, reason, segment, climbed, alternative)


_OFFLINE = frozenset({"cloud"})


def settled_states_of(ctx: Context) -> Mapping[str, Any]:
    """The settled rungs the stored profile brought (rollout/engine/settling.py)."""
    states = ctx.raw(SETTLED_RUNGS)
    return states if isinstance(states, Mapping) else {}


def _unsticky(served: Decision, missing: StickinessMissing) -> Decision:
    """The error a strict context gets for a split it gave nothing to stick to: OpenFeature's
    TARGETING_KEY_MISSING (or INVALID_CONTEXT for another stickiness attribute), with the
    off value (or the safe rung) rather than a random answer."""
    if missing.field == "userId":
        code, details = TARGETING_KEY_MISSING, "targetingKey: required by this flag's split"
    else:
        code = INVALID_CONTEXT
        details = f"{missing.field}: required by this flag's split (its stickiness)"
    return dataclasses.replace(served, reason=ERROR, error_code=code, error_message=details)


def _decision(flag: Flag, ctx: Context) -> Decision:
    ladder = flag.ladder
    if ladder is not None:
        return _decide_ladder(flag, ladder, ctx)
    try:
        return decide(flag, ctx)
    except StickinessMissing as missing:
        return _unsticky(flag.off, missing)


def flag_not_found(flag_key: str) -> Decision:
    """The ERROR decision for a flag the snapshot does not have."""
    return Decision(
        flag_key,
        None,
        DISABLED_VARIANT,
        ERROR,
        False,
        "boolean",
        FLAG_NOT_FOUND,
        f"flag {flag_key!r} does not exist",
    )


def resolve_segment(snapshot: Snapshot, attributes: Mapping[str, Any]) -> str | None:
    """The client's capability segment: the hard rules, else the nearest centroid."""
    if attributes.get(SAVE_DATA.wire) is True:
        return SAVE_DATA_SEGMENT  # an explicit user wish, outside the model
    if snapshot.capability is None:
        return None
    return assign_segment(snapshot.capability, attributes)


def capability_context(
    snapshot: Snapshot, attributes: Mapping[str, Any], *, strict: bool = False
) -> Context:
    """The context decisions read: the measured network in place of the browser's estimate,
    estimates of the signals the client does not report (for requirements only), and
    `segment` set by the server (a client cannot choose its own)."""
    model = snapshot.capability
    estimates: Mapping[str, Estimate] = {}
    if model is None:
        completed = effective_network(attributes)
        segment = SAVE_DATA_SEGMENT if attributes.get(SAVE_DATA.wire) is True else None
    else:
        completed, estimates = model.completed(attributes)
        segment = assign_completed(model, completed, estimates)
    if segment is not None or "segment" in completed:
        completed = dict(completed)
        if segment is None:
            del completed["segment"]
        else:
            completed["segment"] = segment
    return Context(completed, estimates, strict=strict)


def settle_all(snapshot: Snapshot, attributes: Mapping[str, Any], previous: Any) -> dict[str, Any]:
    """The settled rung of every ladder flag after a probe whose capability `attributes`
    carry, from the `previous` states stored with the client's profile (settling.py)."""
    ctx = capability_context(snapshot, attributes)
    states = previous if isinstance(previous, Mapping) else {}
    return {
        flag.key: next_settled(flag.ladder, ctx, states.get(flag.key))
        for flag in snapshot.flags.values()
        if flag.ladder is not None
    }


def evaluate(
    snapshot: Snapshot, flag_key: str, attributes: Mapping[str, Any], *, strict: bool = False
) -> Decision:
    """The decision for one flag and an OFREP-style context (targetingKey + attributes).

    `strict`: a split with nothing to stick to answers TARGETING_KEY_MISSING (OpenFeature,
    the client API) instead of drawing at random (Unleash, its conformance suite)."""
    flag = snapshot.flags.get(flag_key)
    if flag is None:
        return flag_not_found(flag_key)
    return _decision(flag, capability_context(snapshot, attributes, strict=strict))


def evaluate_all(
    snapshot: Snapshot,
    attributes: Mapping[str, Any],
    keys: Iterable[str] | None = None,
    *,
    strict: bool = False,
) -> list[Decision]:
    """Decisions for the given flags (default: every flag, in snapshot order), one context
    (`strict` as in `evaluate`)."""
    ctx = capability_context(snapshot, attributes, strict=strict)
    flags = snapshot.flags
    if keys is None:
        return [_decision(flag, ctx) for flag in flags.values()]
    return [
        flag_not_found(key) if (flag := flags.get(key)) is None else _decision(flag, ctx)
        for key in keys
    ]
