"""Constraint operators (bucketing.md §6): validation and compilation into predicates.

A constraint is compiled once per snapshot into a predicate over a Context, so evaluation
never parses the constraint's own values again.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import re2

from rollout.engine.context import Context
from rollout.engine.semver import SemVer, parse_semver

Predicate = Callable[[Context], bool]

LIST_OPERATORS = frozenset(
    {"IN", "NOT_IN", "STR_STARTS_WITH", "STR_ENDS_WITH", "STR_CONTAINS", "IN_CIDR"}
)
NUM_OPERATORS = frozenset({"NUM_EQ", "NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE"})
DATE_OPERATORS = frozenset({"DATE_AFTER", "DATE_BEFORE"})
SEMVER_OPERATORS = frozenset({"SEMVER_EQ", "SEMVER_GT", "SEMVER_GTE", "SEMVER_LT", "SEMVER_LTE"})
OPERATORS = LIST_OPERATORS | NUM_OPERATORS | DATE_OPERATORS | SEMVER_OPERATORS | {"REGEX"}

# Strict numbers as yggdrasil parses them: no whitespace, no "_"; ".5", "5.", "1e3", inf, NaN.
_CONTEXT_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_CONTEXT_SPECIAL = re.compile(r"^[+-]?(?:inf|infinity|nan)$", re.IGNORECASE)
# Constraint values are held to a stricter form when saved (§10).
_VALUE_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$")
_VALUE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?(?:Z|[+-]\d{2}:\d{2})$")


class InvalidDefinition(ValueError):
    """A definition that cannot be evaluated (§10); the whole flag is then off."""


def parse_context_number(text: str) -> float | None:
    """A context value as a float under yggdrasil's strict rules, or None."""
    if _CONTEXT_NUMBER.match(text) or _CONTEXT_SPECIAL.match(text):
        return float(text)
    return None


def parse_instant(text: str) -> datetime | None:
    """An RFC 3339 instant with an offset, or None."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def validate_constraint(raw: Any, path: str) -> list[str]:
    """Human-readable problems with one constraint, each naming its field under `path`."""
    if not isinstance(raw, Mapping):
        return [f"{path}: must be an object"]
    errors: list[str] = []
    name = raw.get("contextName")
    if not isinstance(name, str) or not name:
        errors.append(f"{path}.contextName: required, a non-empty string")
    operator = raw.get("operator")
    if operator not in OPERATORS:
        errors.append(f"{path}.operator: unknown operator {operator!r}")
        return errors
    for flag in ("inverted", "caseInsensitive"):
        if flag in raw and not isinstance(raw[flag], bool):
            errors.append(f"{path}.{flag}: must be true or false")
    if operator in LIST_OPERATORS:
        values = raw.get("values")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            errors.append(f"{path}.values: must be a list of strings")
        return errors
    value = raw.get("value")
    if not isinstance(value, str):
        errors.append(f"{path}.value: required, a string")
    elif operator in NUM_OPERATORS and not _VALUE_NUMBER.match(value):
        errors.append(f"{path}.value: {value!r} is not a number")
    elif operator in DATE_OPERATORS and not _VALUE_DATE.match(value):
        errors.append(f"{path}.value: {value!r} is not a date like 2026-01-31T12:00:00Z")
    elif operator in SEMVER_OPERATORS and parse_semver(value) is None:
        errors.append(f"{path}.value: {value!r} is not a semantic version like 1.2.3")
    elif operator == "REGEX":
        try:
            re2.compile(value, _re2_options())
        except re2.error as exc:
            errors.append(f"{path}.value: {value!r} is not a valid RE2 expression ({exc})")
    return errors


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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


def _never(ctx: Context) -> bool:
    return False


def _with_inversion(predicate: Predicate, inverted: bool) -> Predicate:
    if not inverted:
        return predicate
    return lambda ctx: not predicate(ctx)


def _list_predicate(
    operator: str, name: str, values: list[str], case_insensitive: bool
) -> Predicate:
    if operator == "IN":
        members = frozenset(values)  # caseInsensitive is ignored for IN, as in yggdrasil
        return lambda ctx: (v := ctx.get(name)) is not None and v in members
    if operator == "NOT_IN":
        members = frozenset(values)
        return lambda ctx: (v := ctx.get(name)) is None or v not in members
    if operator == "IN_CIDR":
        return address_in(name, parse_networks(values))  # entries are not trimmed
    needles = tuple(v.lower() for v in values) if case_insensitive else tuple(values)
    test: Callable[[str, str], bool] = {
        "STR_STARTS_WITH": str.startswith,
        "STR_ENDS_WITH": str.endswith,
        "STR_CONTAINS": str.__contains__,
    }[operator]

    def string_match(ctx: Context) -> bool:
        v = ctx.get(name)
        if v is None:
            return False
        if case_insensitive:
            v = v.lower()
        return any(test(v, needle) for needle in needles)

    return string_match


def _num_predicate(operator: str, name: str, target: float) -> Predicate:
    compare: Callable[[float], bool] = {
        "NUM_EQ": lambda x: abs(x - target) < 2.220446049250313e-16,
        "NUM_GT": lambda x: x > target,
        "NUM_GTE": lambda x: x >= target,
        "NUM_LT": lambda x: x < target,
        "NUM_LTE": lambda x: x <= target,
    }[operator]

    def num(ctx: Context) -> bool:
        v = ctx.get(name)
        if v is None:
            return False
        x = parse_context_number(v)
        return x is not None and not math.isnan(x) and compare(x)

    return num


def _date_predicate(operator: str, name: str, target: datetime) -> Predicate:
    after = operator == "DATE_AFTER"

    def date(ctx: Context) -> bool:
        v = ctx.get(name)
        if v is None:
            if name != "currentTime":
                return False
            moment: datetime | None = datetime.now(UTC)
        else:
            moment = parse_instant(v)
        if moment is None:
            return False
        return moment > target if after else moment < target

    return date


def _semver_predicate(operator: str, name: str, target: SemVer) -> Predicate:
    compare: Callable[[SemVer], bool] = {
        "SEMVER_EQ": lambda x: x == target,
        "SEMVER_GT": lambda x: x > target,
        "SEMVER_GTE": lambda x: x >= target,
        "SEMVER_LT": lambda x: x < target,
        "SEMVER_LTE": lambda x: x <= target,
    }[operator]

    def semver(ctx: Context) -> bool:
        v = ctx.get(name)
        if v is None:
            return False
        version = parse_semver(v)
        return version is not None and compare(version)

    return semver


def _re2_options(case_insensitive: bool = False) -> re2.Options:
    options = re2.Options()
    options.case_sensitive = not case_insensitive
    options.log_errors = False  # an invalid pattern is reported to the caller, not stderr
    return options


def _regex_predicate(name: str, pattern: str, case_insensitive: bool) -> Predicate:
    options = _re2_options(case_insensitive)
    try:
        compiled = re2.compile(pattern, options)
    except re2.error:
        return _never  # an invalid pattern never matches (then inversion applies)

    def regex(ctx: Context) -> bool:
        v = ctx.get(name)
        return v is not None and compiled.search(v) is not None

    return regex


def compile_constraint(raw: Mapping[str, Any]) -> Predicate:
    """A predicate for one constraint; raises InvalidDefinition as yggdrasil's compiler does."""
    operator = raw.get("operator")
    name = str(raw.get("contextName", ""))
    inverted = bool(raw.get("inverted", False))
    case_insensitive = bool(raw.get("caseInsensitive", False))
    if operator in LIST_OPERATORS:
        values = [str(v) for v in raw.get("values") or []]
        return _with_inversion(_list_predicate(operator, name, values, case_insensitive), inverted)
    value = raw.get("value")
    if operator in NUM_OPERATORS:
        if not isinstance(value, str) or not _VALUE_NUMBER.match(value.strip()):
            raise InvalidDefinition(f"{operator} needs a number, got {value!r}")
        return _with_inversion(_num_predicate(operator, name, float(value)), inverted)
    if operator in DATE_OPERATORS:
        valid = isinstance(value, str) and _VALUE_DATE.match(value)
        target = parse_instant(value) if valid and isinstance(value, str) else None
        if target is None:
            raise InvalidDefinition(f"{operator} needs a date, got {value!r}")
        return _with_inversion(_date_predicate(operator, name, target), inverted)
    if operator in SEMVER_OPERATORS:
        if isinstance(value, str) and value.startswith("v"):
            return _never  # yggdrasil: false, and inversion is not applied
        version = parse_semver(value.strip()) if isinstance(value, str) else None
        if version is None:
            raise InvalidDefinition(f"{operator} needs a semantic version, got {value!r}")
        return _with_inversion(_semver_predicate(operator, name, version), inverted)
    if operator == "REGEX":
        pattern = value if isinstance(value, str) else ""
        return _with_inversion(_regex_predicate(name, pattern, case_insensitive), inverted)
    raise InvalidDefinition(f"unknown operator {operator!r}")
