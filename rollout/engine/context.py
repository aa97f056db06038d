"""The evaluation context: OFREP-style flat attributes, read with Unleash's field rules.

`targetingKey` is the user id: the Unleash field `userId` reads the attribute `userId` when
given, else `targetingKey`. Every other name (sessionId, remoteAddress, currentTime, …) is a
plain attribute. Values are compared as strings; None, lists and objects count as absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def as_text(value: Any) -> str | None:
    """A context value as the string Unleash compares, or None when absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # JSON has one number type: 2.0 from Python and 2 from JavaScript must agree.
        return str(int(value)) if value.is_integer() else repr(value)
    return None


class Context:
    """Read access to one request's attributes, converting each value once."""

    __slots__ = ("_attributes", "_texts")

    def __init__(self, attributes: Mapping[str, Any]):
        self._attributes = attributes
        self._texts: dict[str, str | None] = {}

    def get(self, name: str) -> str | None:
        """The attribute `name` as text (Unleash `userId` falls back to `targetingKey`)."""
        try:
            return self._texts[name]
        except KeyError:
            pass
        attributes = self._attributes
        value = attributes.get(name)
        if value is None and name == "userId":
            value = attributes.get("targetingKey")
        text = as_text(value)
        self._texts[name] = text
        return text

    def raw(self, name: str) -> Any:
        """The attribute as sent (numbers stay numbers), for capability requirements."""
        return self._attributes.get(name)
