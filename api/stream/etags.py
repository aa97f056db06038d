"""The etag of a change event, and reading it back from a refetch (`flagConfigEtag`)."""

from __future__ import annotations

import re

_STREAM_ETAG = re.compile(r'^(?:W/)?"?v([0-9]{1,18})"?$')


def stream_etag(version: int) -> str:
    """The etag a change event carries: the version whose answers changed."""
    return f'"v{version}"'


def version_of(etag: str) -> int | None:
    """The version a `flagConfigEtag` names (None when it is not one of ours)."""
    match = _STREAM_ETAG.match(etag.strip())
    return int(match.group(1)) if match else None
