"""Strict SemVer 2.0.0 parsing and precedence (build metadata ignored)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

# The grammar of semver.org, with ASCII digits only.
_IDENTIFIER = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    rf"(?:-({_IDENTIFIER}(?:\.{_IDENTIFIER})*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)

# npm's semver limits (MAX_LENGTH, MAX_SAFE_COMPONENT_LENGTH): a version is a short string,
# and a numeric part past 16 digits is no real version (Python also refuses to turn more
# than 4,300 digits into an int).
MAX_LENGTH = 256
MAX_NUMBER_DIGITS = 16

Precedence = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


@dataclass(frozen=True, slots=True, order=True)
class SemVer:
    """A parsed version; ordering and equality follow SemVer precedence."""

    precedence: Precedence
    text: str = field(compare=False)


def _precedence(major: int, minor: int, patch: int, prerelease: tuple[str, ...]) -> Precedence:
    if not prerelease:
        return (major, minor, patch, 1, ())  # a release sorts above its pre-releases
    # Numeric identifiers compare numerically and below alphanumeric ones; a shorter list
    # of otherwise equal identifiers is lower, which tuple ordering gives for free.
    identifiers = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in prerelease)
    return (major, minor, patch, 0, identifiers)


@lru_cache(maxsize=4096)
def parse_semver(text: str) -> SemVer | None:
    """The version, or None when `text` is not strict SemVer 2.0.0 (no leading "v")."""
    if len(text) > MAX_LENGTH:
        return None
    match = _SEMVER.fullmatch(text)
    if match is None:
        return None
    major, minor, patch, prerelease, _build = match.groups()
    identifiers = tuple(prerelease.split(".")) if prerelease else ()
    numbers = (major, minor, patch, *(p for p in identifiers if p.isdigit()))
    if any(len(number) > MAX_NUMBER_DIGITS for number in numbers):
        return None
    return SemVer(_precedence(int(major), int(minor), int(patch), identifiers), text)
