"""The evaluation context: OFREP-style flat attributes, read with Unleash's field rules.

See docs/bucketing.md, "The context".

- `targetingKey` is the user id: the Unleash field `userId` reads the attribute `userId`
  when given, else `targetingKey`. Every other name (sessionId, remoteAddress, currentTime,
  environment, appName, anything else) is a plain attribute.
- Values are compared as strings: str as is (an empty string is present); bool as
  "true"/"false"; int in decimal; a float with an integral value as that integer ("2.0" and
  JavaScript's 2 must agree: JSON has one number type), any other float as repr() ("1.5").
- None, lists and objects count as absent: they have no string form to compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollout.engine.estimates import Estimate

_NO_ESTIMATES: Mapping[str, Estimate] = {}


class StickinessMissing(Exception):
    """A split needs a value the context does not have (`field`: "userId" for the targeting
    key, else the stickiness attribute); raised only in strict contexts."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def as_text(value: Any) -> str | None:
    """A context value as the string Unleash compares, or None when absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


class Context:
    """Read access to one request's attributes, converting each value once, on first use."""

    __slots__ = ("_attributes", "_texts", "estimates", "strict")

    def __init__(
        self,
        attributes: Mapping[str, Any],
        estimates: Mapping[str, Estimate] | None = None,
        *,
        strict: bool = False,
    ) -> None:
        self._attributes = attributes
        # Strict (the OpenFeature answer, the API's): a split whose stickiness value is
        # missing raises StickinessMissing instead of Unleash's random draw, so that the same
        # request never gets a different answer.
        self.strict = strict
        # What the server estimated of the signals the client does not report: read by
        # capability requirements only (rollout/engine/ladder.py), never by rules.
        self.estimates = estimates or _NO_ESTIMATES
        # Lazy: a context may carry a whole capability profile, and rules read few names.
        self._texts: dict[str, str | None] = {}

    def get(self, name: str) -> str | None:
        """The attribute `name` as text (Unleash `userId` falls back to `targetingKey`)."""
        texts = self._texts
        if name in texts:
            return texts[name]
        value = self._attributes.get(name)
        if value is None and name == "userId":
            value = self._attributes.get("targetingKey")
        text = texts[name] = as_text(value)
        return text

    def unsticky(self, field: str) -> None:
        """A split found no value of `field` to stick to: raise in a strict context (the
        caller then draws at random, as Unleash does)."""
        if self.strict:
            raise StickinessMissing(field)

    def raw(self, name: str) -> Any:
        """The attribute as sent (numbers stay numbers), for capability requirements."""
        return self._attributes.get(name)
