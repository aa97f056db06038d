"""Built-in strategies (bucketing.md §5) compiled into predicates over a Context."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Mapping

from rollout.engine.constraints import InvalidDefinition, Predicate, address_in, parse_networks
from rollout.engine.context import Context
from rollout.engine.hashing import normalized

STRATEGIES = frozenset(
    {
        "default",
        "userWithId",
        "gradualRolloutUserId",
        "gradualRolloutSessionId",
        "gradualRolloutRandom",
        "flexibleRollout",
        "remoteAddress",
        "applicationHostname",
    }
)


def _always(ctx: Context) -> bool:
    return True


def _never(ctx: Context) -> bool:
    return False


def parse_percentage(text: str | None) -> int | None:
    """A whole percentage 0..100; None when malformed. Above 100 is an invalid definition."""
    if text is None or not text.isdigit():
        return None
    value = int(text)
    if value > 100:
        raise InvalidDefinition(f"percentage {text} is above 100")
    return value


def _random_draw(rng: random.Random, percentage: int) -> Predicate:
    if percentage <= 0:
        return _never
    if percentage >= 100:
        return _always
    return lambda ctx: rng.randint(1, 100) <= percentage


def _bucketed(field: str, group_id: str, percentage: int) -> Predicate:
    def in_rollout(ctx: Context) -> bool:
        value = ctx.get(field)
        return value is not None and normalized(value, group_id) <= percentage

    return in_rollout


def _flexible(
    parameters: Mapping[str, str], flag_key: str, rng: random.Random
) -> tuple[Predicate, bool]:
    percentage = parse_percentage(parameters.get("rollout"))
    if percentage is None or percentage == 0:
        return _never, False
    group_id = parameters.get("groupId") or flag_key
    stickiness = parameters.get("stickiness") or "default"
    is_split = percentage < 100
    if stickiness == "random":
        return _random_draw(rng, percentage), is_split
    if stickiness != "default":
        return _bucketed(stickiness, group_id, percentage), is_split
    random_fallback = _random_draw(rng, percentage)

    def default_stickiness(ctx: Context) -> bool:
        value = ctx.get("userId")
        if value is None:
            value = ctx.get("sessionId")
        if value is None:
            return random_fallback(ctx)
        return normalized(value, group_id) <= percentage

    return default_stickiness, is_split


def compile_strategy(
    name: str, parameters: Mapping[str, str], flag_key: str, rng: random.Random
) -> tuple[Predicate, bool]:
    """The strategy's built-in check and whether it splits clients by percentage."""
    if name == "default":
        return _always, False
    if name == "flexibleRollout":
        return _flexible(parameters, flag_key, rng)
    if name in ("gradualRolloutUserId", "gradualRolloutSessionId"):
        percentage = parse_percentage(parameters.get("percentage"))
        group_id = parameters.get("groupId")
        if percentage is None or group_id is None:
            return _never, False
        field = "userId" if name == "gradualRolloutUserId" else "sessionId"
        return _bucketed(field, group_id, percentage), percentage < 100
    if name == "gradualRolloutRandom":
        percentage = parse_percentage(parameters.get("percentage"))
        if percentage is None:
            return _never, False
        return _random_draw(rng, percentage), 0 < percentage < 100
    if name == "userWithId":
        ids = frozenset(item.strip() for item in parameters.get("userIds", "").split(","))
        return (lambda ctx: (v := ctx.get("userId")) is not None and v in ids), False
    if name == "remoteAddress":
        return _remote_address(parameters.get("IPs", "")), False
    if name == "applicationHostname":
        names = {item.strip().lower() for item in parameters.get("hostNames", "").split(",")}
        here = socket.gethostname().lower()
        return (_always if here in names else _never), False
    return _never, False  # an unknown (custom) strategy is false


def _remote_address(ip_list: str) -> Predicate:
    return address_in("remoteAddress", parse_networks(item.strip() for item in ip_list.split(",")))


def all_of(predicates: list[Predicate]) -> Callable[[Context], bool]:
    """A predicate true when every one of `predicates` is (short-circuit, in order)."""
    if not predicates:
        return _always
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
