"""Parsing of numbers, instants and percentages, as yggdrasil parses them (docs/bucketing.md).

Two grammars each: a lenient one for context values (what a client sends) and a strict one
for a definition's own values (what is saved).
"""

from __future__ import annotations

import re
from datetime import date

# ASCII digits only: `\d` and str.isdigit() also accept other scripts' digits.
_DIGITS = re.compile(r"[0-9]+")
_NUMBER_LITERAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_DATE_LITERAL = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{3}))?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_NANOS = 1_000_000_000


def parse_number(text: str) -> float | None:
    """A context value as a 64-bit float under Rust's rules, or None.

    Accepts ".5", "5.", "1e3", "inf" and "NaN"; rejects surrounding whitespace, "_" and
    non-ASCII digits, which Python's float() would take.
    """
    if not text.isascii() or "_" in text or text != text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        return None


def parse_number_literal(text: str) -> float | None:
    """A definition's number: `[+-]digits[.digits][e[+-]digits]`, or None."""
    return float(text) if _NUMBER_LITERAL.fullmatch(text) else None


def _instant(match: re.Match[str]) -> int | None:
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None
    h, m, s = int(hour), int(minute), int(second)
    if h > 23 or m > 59 or s > 59:
        return None
    offset_s = 0
    if offset not in ("Z", "z"):
        offset_h, offset_m = int(offset[1:3]), int(offset[4:6])
        if offset_h > 23 or offset_m > 59:
            return None
        offset_s = (offset_h * 3600 + offset_m * 60) * (-1 if offset[0] == "-" else 1)
    # Whole nanoseconds keep equal instants equal (DATE_AFTER/BEFORE are strict).
    nanos = int((fraction or "")[:9].ljust(9, "0"))
    return (days * 86400 + h * 3600 + m * 60 + s - offset_s) * _NANOS + nanos


def parse_instant(text: str) -> int | None:
    """An RFC 3339 instant with an offset, as nanoseconds since the epoch, or None."""
    match = _RFC3339.fullmatch(text)
    return None if match is None else _instant(match)


def parse_date_literal(text: str) -> int | None:
    """A definition's date: `YYYY-MM-DDTHH:MM:SS[.mmm](Z|±HH:MM)` in nanoseconds, or None."""
    match = _DATE_LITERAL.fullmatch(text)
    return None if match is None else _instant(match)


def parse_percentage(text: str | None) -> int | None:
    """An unsigned whole number ("0".."100", or above: the caller decides), or None."""
    if text is None or _DIGITS.fullmatch(text) is None:
        return None
    return int(text)


def split_list(text: str | None) -> list[str]:
    """A comma-separated strategy parameter, each item trimmed (empty items kept)."""
    return [item.strip() for item in (text or "").split(",")]
