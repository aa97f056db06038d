"""Built-in strategies (docs/bucketing.md) compiled into predicates over a Context."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

from rollout.engine.constraints import (
    InvalidDefinition,
    Predicate,
    address_in,
    always,
    never,
    parse_networks,
)
from rollout.engine.context import Context
from rollout.engine.hashing import ROLLOUT_SEED, bucket
from rollout.engine.literals import parse_percentage, split_list
from rollout.engine.model import RuleDef

Draw = Callable[[], float]  # a uniform float in [0, 1), e.g. random.Random().random


@dataclass(frozen=True, slots=True)
class Strategy:
    """A compiled strategy check and what it says about the reason of a match."""

    check: Predicate
    split: bool  # a percentage strictly between 0 and 100 decides
    conditional: bool  # some clients can fail it (it needs a context field, or a list)


_NEVER = Strategy(never, split=False, conditional=True)
_ALWAYS = Strategy(always, split=False, conditional=False)
PERCENTAGE_PARAMETERS = {
    "gradualRolloutUserId": "percentage",
    "gradualRolloutSessionId": "percentage",
    "gradualRolloutRandom": "percentage",
    "flexibleRollout": "rollout",
}


def rule_percentage(rule: RuleDef, path: str) -> int | None:
    """The rule's percentage; None when malformed (the rule is then false). Raises above 100."""
    parameter = PERCENTAGE_PARAMETERS[rule.strategy]
    percentage = parse_percentage(rule.parameter(parameter))
    if percentage is not None and percentage > 100:
        raise InvalidDefinition(f"{path}.parameters.{parameter}", f"{percentage} is above 100")
    return percentage


def _random(draw: Draw, percentage: int) -> Strategy:
    if percentage == 0:
        return _NEVER
    if percentage == 100:
        return _ALWAYS
    share = percentage / 100  # P(draw < p/100) = p %, as Node's "1..100 <= p"
    return Strategy(lambda ctx: draw() < share, split=True, conditional=False)


def _bucketed(field: str, prefix: str, percentage: int) -> Strategy:
    def in_rollout(ctx: Context) -> bool:
        value = ctx.get(field)
        return value is not None and bucket(prefix, value, 100, ROLLOUT_SEED) <= percentage

    return Strategy(in_rollout, split=0 < percentage < 100, conditional=True)


def _flexible(rule: RuleDef, flag_key: str, draw: Draw, path: str) -> Strategy:
    percentage = rule_percentage(rule, path)
    if not percentage:
        return _NEVER  # malformed, or 0 %: nobody, not even by a random draw
    prefix = f"{rule.parameter('groupId') or flag_key}:"
    stickiness = rule.parameter("stickiness") or "default"
    if stickiness == "random":
        return _random(draw, percentage)
    if stickiness != "default":
        # A named field (userId, sessionId or any attribute): absent is false even at 100 %.
        return _bucketed(stickiness, prefix, percentage)
    if percentage == 100:
        return _ALWAYS  # userId, sessionId or a random draw: all of them pass at 100 %

    def default_stickiness(ctx: Context) -> bool:
        value = ctx.get("userId")
        if value is None:
            value = ctx.get("sessionId")
        if value is None:
            ctx.unsticky("userId")
            return draw() * 100 < percentage
        return bucket(prefix, value, 100, ROLLOUT_SEED) <= percentage

    return Strategy(default_stickiness, split=True, conditional=False)


def compile_strategy(rule: RuleDef, flag_key: str, draw: Draw, path: str = "rule") -> Strategy:
    """The rule's built-in check; raises InvalidDefinition for a percentage above 100."""
    name = rule.strategy
    if name == "default":
        return _ALWAYS
    if name == "flexibleRollout":
        return _flexible(rule, flag_key, draw, path)
    if name in ("gradualRolloutUserId", "gradualRolloutSessionId"):
        percentage = rule_percentage(rule, path)
        group_id = rule.parameter("groupId")
        if percentage is None or group_id is None:
            return _NEVER  # yggdrasil requires both
        field = "userId" if name == "gradualRolloutUserId" else "sessionId"
        return _bucketed(field, f"{group_id}:", percentage)
    if name == "gradualRolloutRandom":
        percentage = rule_percentage(rule, path)
        return _NEVER if percentage is None else _random(draw, percentage)
    if name == "userWithId":
        # A doubled comma leaves an empty item, so userId "" then matches (as in Unleash).
        ids = frozenset(split_list(rule.parameter("userIds")))
        return Strategy(lambda ctx: ctx.get("userId") in ids, split=False, conditional=True)
    if name == "remoteAddress":
        networks = parse_networks(split_list(rule.parameter("IPs")))
        return Strategy(address_in("remoteAddress", networks), split=False, conditional=True)
    if name == "applicationHostname":
        # The host name is this process's own: known at compile time.
        names = {item.lower() for item in split_list(rule.parameter("hostNames"))}
        return _ALWAYS if socket.gethostname().lower() in names else _NEVER
    return _NEVER  # an unknown (custom) strategy is false
