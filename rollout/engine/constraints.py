"""Constraint operators (docs/bucketing.md), compiled once into predicates over a Context.

Everything a constraint holds (sets, numbers, instants, versions, patterns, networks) is
parsed at compile time, so evaluation never parses the constraint's own values again.
"""

from __future__ import annotations

import ipaddress
import operator
import time
from collections.abc import Callable, Iterable
from typing import Any

import re2

from rollout.engine.context import Context
from rollout.engine.literals import (
    parse_date_literal,
    parse_instant,
    parse_number,
    parse_number_literal,
)
from rollout.engine.model import (
    DATE_OPERATORS,
    NUM_OPERATORS,
    SEMVER_OPERATORS,
    ConstraintDef,
)
from rollout.engine.semver import parse_semver

Predicate = Callable[[Context], bool]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_EPSILON = 2.220446049250313e-16  # f64::EPSILON: NUM_EQ is |a - b| < ε, as in yggdrasil
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "GT": operator.gt,
    "GTE": operator.ge,
    "LT": operator.lt,
    "LTE": operator.le,
}


class InvalidDefinition(ValueError):
    """A definition an Unleash engine refuses to compile: the whole flag is then off."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def always(ctx: Context) -> bool:
    """The predicate that always holds."""
    return True


def never(ctx: Context) -> bool:
    """The predicate that never holds."""
    return False


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs or bare addresses as networks; invalid entries are skipped, not fatal."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    return tuple(networks)


def address_in(name: str, networks: tuple[Network, ...]) -> Predicate:
    """True when the attribute `name` is an IP address inside one of `networks`."""
    if not networks:
        return never

    def in_networks(ctx: Context) -> bool:
        value = ctx.get(name)
        if value is None:
            return False
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        return any(address in network for network in networks)

    return in_networks


def compile_regex(pattern: str, case_insensitive: bool) -> re2._Regexp:
    """The RE2 pattern; raises re2.error when RE2 rejects it (look-around, back-references)."""
    options = re2.Options()
    options.case_sensitive = not case_insensitive
    options.log_errors = False  # an invalid pattern is reported to the caller, not stderr
    return re2.compile(pattern, options)


def _membership(name: str, members: frozenset[str], wanted: bool) -> Predicate:
    # NOT_IN is exactly IN inverted (an absent value is in no list), so both are one test.
    if wanted:
        return lambda ctx: ctx.get(name) in members
    return lambda ctx: ctx.get(name) not in members


def _string(operator_name: str, name: str, values: tuple[str, ...], fold: bool) -> Predicate:
    needles = tuple(v.lower() for v in values) if fold else values

    if operator_name == "STR_STARTS_WITH":

        def starts(ctx: Context) -> bool:
            v = ctx.get(name)
            return v is not None and (v.lower() if fold else v).startswith(needles)

        return starts
    if operator_name == "STR_ENDS_WITH":

        def ends(ctx: Context) -> bool:
            v = ctx.get(name)
            return v is not None and (v.lower() if fold else v).endswith(needles)

        return ends

    def contains(ctx: Context) -> bool:
        v = ctx.get(name)
        if v is None:
            return False
        if fold:
            v = v.lower()
        return any(needle in v for needle in needles)

    return contains


def _number(operator_name: str, name: str, target: float) -> Predicate:
    if operator_name == "NUM_EQ":

        def equal(ctx: Context) -> bool:
            v = ctx.get(name)
            x = None if v is None else parse_number(v)
            return x is not None and abs(x - target) < _EPSILON

        return equal
    compare = _COMPARISONS[operator_name.removeprefix("NUM_")]

    def number(ctx: Context) -> bool:
        v = ctx.get(name)
        x = None if v is None else parse_number(v)
        return x is not None and compare(x, target)

    return number


def _date(operator_name: str, name: str, target: int) -> Predicate:
    compare = operator.gt if operator_name == "DATE_AFTER" else operator.lt
    now_when_absent = name == "currentTime"  # the only field with a default: now

    def moment(ctx: Context) -> bool:
        v = ctx.get(name)
        if v is None:
            return now_when_absent and compare(time.time_ns(), target)
        instant = parse_instant(v)
        return instant is not None and compare(instant, target)

    return moment


def _semver(operator_name: str, name: str, target: object) -> Predicate:
    kind = operator_name.removeprefix("SEMVER_")
    compare = operator.eq if kind == "EQ" else _COMPARISONS[kind]

    def version(ctx: Context) -> bool:
        v = ctx.get(name)
        parsed = None if v is None else parse_semver(v)
        return parsed is not None and compare(parsed.precedence, target)

    return version


def _regex(name: str, pattern: str | None, case_insensitive: bool) -> Predicate:
    if pattern is None:
        return never
    try:
        search = compile_regex(pattern, case_insensitive).search
    except re2.error:
        return never  # an invalid pattern never matches (inversion still applies)

    def regex(ctx: Context) -> bool:
        v = ctx.get(name)
        if v is None:
            return False
        try:
            return search(v) is not None
        except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form for RE2 to search
            return False

    return regex


def _invert(predicate: Predicate) -> Predicate:
    return lambda ctx: not predicate(ctx)


def _required_value(constraint: ConstraintDef, path: str) -> str:
    if constraint.value is None:
        raise InvalidDefinition(f"{path}.value", f"required for {constraint.operator}")
    return constraint.value


def compile_constraint(constraint: ConstraintDef, path: str = "constraint") -> Predicate:
    """A predicate for one constraint; raises InvalidDefinition where yggdrasil would."""
    op, name = constraint.operator, constraint.context_name
    if op in ("IN", "NOT_IN"):
        return _membership(name, frozenset(constraint.values), (op == "IN") != constraint.inverted)
    if op in NUM_OPERATORS:
        value = _required_value(constraint, path)
        target = parse_number_literal(value)
        if target is None:
            raise InvalidDefinition(f"{path}.value", f"{value!r} is not a number")
        predicate = _number(op, name, target)
    elif op in DATE_OPERATORS:
        value = _required_value(constraint, path)
        instant = parse_date_literal(value)
        if instant is None:
            raise InvalidDefinition(
                f"{path}.value", f"{value!r} is not a date like 2026-01-31T12:00:00Z"
            )
        predicate = _date(op, name, instant)
    elif op in SEMVER_OPERATORS:
        value = _required_value(constraint, path)
        if value.startswith("v"):
            return never  # yggdrasil: false, and inversion is not applied
        version = parse_semver(value)
        if version is None:
            raise InvalidDefinition(
                f"{path}.value", f"{value!r} is not a semantic version like 1.2.3"
            )
        predicate = _semver(op, name, version.precedence)
    elif op == "REGEX":
        predicate = _regex(name, constraint.value, constraint.case_insensitive)
    elif op == "IN_CIDR":
        predicate = address_in(name, parse_networks(constraint.values))  # entries not trimmed
    elif op in ("STR_STARTS_WITH", "STR_ENDS_WITH", "STR_CONTAINS"):
        predicate = _string(op, name, constraint.values, constraint.case_insensitive)
    else:
        raise InvalidDefinition(f"{path}.operator", f"unknown operator {op!r}")
    return _invert(predicate) if constraint.inverted else predicate
