"""Strict SemVer 2.0.0 parsing and precedence (build metadata ignored)."""

from __future__ import annotations

import re
from functools import lru_cache, total_ordering

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


@total_ordering
class SemVer:
    """A parsed version; compares by SemVer precedence."""

    __slots__ = ("core", "pre")

    def __init__(self, core: tuple[int, int, int], pre: tuple[int | str, ...]):
        self.core = core
        self.pre = pre

    def _key(self) -> tuple[object, ...]:
        # A release sorts above its pre-releases; numeric identifiers below alphanumeric ones.
        if not self.pre:
            return (self.core, 1, ())
        ids = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.pre)
        return (self.core, 0, ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemVer) and self._key() == other._key()

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@lru_cache(maxsize=4096)
def parse_semver(text: str) -> SemVer | None:
    """The version, or None when `text` is not strict SemVer 2.0.0."""
    match = _SEMVER.match(text)
    if match is None:
        return None
    major, minor, patch, pre, _build = match.groups()
    identifiers: tuple[int | str, ...] = ()
    if pre:
        identifiers = tuple(int(p) if p.isdigit() else p for p in pre.split("."))
    return SemVer((int(major), int(minor), int(patch)), identifiers)
