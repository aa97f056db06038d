"""The event batch a client sends, validated and normalised (pure Python, no Django).

A batch is all or nothing: the first bad field rejects it, named as `events[3].rating`.
Normalised events keep only what the fold needs (no event id, no targeting key) and carry
their time as epoch seconds.
"""

from __future__ import annotations

import math
from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

EVENT_TYPES = ("exposure", "inference", "crash", "energy", "feedback")
ARMS = ("treatment", "control")
MAX_EVENTS = 1000
MAX_TARGETING_KEY = 256
MAX_EVENT_ID = 64
MAX_SEGMENT = 63
MAX_INFERENCE_MS = 600_000.0
MAX_MILLIJOULES = 1e7
MAX_TIMESTAMP_TEXT = 64
OLDEST_S = 24 * 3600.0  # events older than this are refused
NEWEST_S = 300.0  # clock skew tolerated ahead of the server

_COMMON_FIELDS = frozenset({"id", "type", "flag", "segment", "arm", "timestamp"})
_TYPE_FIELDS: dict[str, frozenset[str]] = {
    "exposure": frozenset(),
    "inference": frozenset({"ms", "ok"}),
    "crash": frozenset(),
    "energy": frozenset({"millijoules"}),
    "feedback": frozenset({"rating"}),
}
_BODY_FIELDS = frozenset({"targetingKey", "events"})


class EventsInvalid(ValueError):
    """A batch that cannot be accepted; `field` names the first offending field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class EventBatch:
    """One client's validated batch: its event ids (for deduplication) and normalised events."""

    targeting_key: str
    ids: tuple[str, ...]
    events: tuple[dict[str, Any], ...]


def _text(value: Any, field: str, *, longest: int) -> str:
    if value is None:
        raise EventsInvalid(field, "required")
    if not isinstance(value, str):
        raise EventsInvalid(field, "must be a string")
    if not value or len(value) > longest:
        raise EventsInvalid(field, f"must be 1 to {longest} characters")
    return value


def _number(value: Any, field: str, *, highest: float) -> float:
    if value is None:
        raise EventsInvalid(field, "required")
    # bool is an int in Python; `true` is not a measurement.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EventsInvalid(field, "must be a number")
    number = float(value)
    if not math.isfinite(number) or not 0 < number <= highest:
        raise EventsInvalid(field, f"must be greater than 0 and at most {highest:g}")
    return number


def _timestamp(value: Any, field: str, now: float) -> float:
    if value is None:
        return now
    if isinstance(value, str):
        if len(value) > MAX_TIMESTAMP_TEXT:
            raise EventsInvalid(field, "not an ISO-8601 date-time")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise EventsInvalid(field, "not an ISO-8601 date-time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value) / 1000.0
        if not math.isfinite(seconds):
            raise EventsInvalid(field, "must be finite")
    else:
        raise EventsInvalid(field, "must be an ISO-8601 string or epoch milliseconds")
    if seconds < now - OLDEST_S:
        raise EventsInvalid(field, "older than 24 hours")
    if seconds > now + NEWEST_S:
        raise EventsInvalid(field, "more than 5 minutes in the future")
    return seconds


def _event(raw: Any, at: str, flags: Container[str], now: float) -> tuple[str, dict[str, Any]]:
    if not isinstance(raw, Mapping):
        raise EventsInvalid(at, "must be a JSON object")
    event_id = _text(raw.get("id"), f"{at}.id", longest=MAX_EVENT_ID)
    kind = raw.get("type")
    if kind is None:
        raise EventsInvalid(f"{at}.type", "required")
    if not isinstance(kind, str) or kind not in _TYPE_FIELDS:
        raise EventsInvalid(f"{at}.type", f"must be one of {', '.join(EVENT_TYPES)}")
    unknown = sorted(set(raw) - _COMMON_FIELDS - _TYPE_FIELDS[kind])
    if unknown:
        raise EventsInvalid(f"{at}.{unknown[0][:40]}", f"not a field of a {kind} event")
    flag = _text(raw.get("flag"), f"{at}.flag", longest=200)
    if flag not in flags:
        raise EventsInvalid(f"{at}.flag", f"unknown flag {flag!r} in this environment")
    segment = _text(raw.get("segment"), f"{at}.segment", longest=MAX_SEGMENT)
    arm = raw.get("arm")
    if arm not in ARMS:
        raise EventsInvalid(f"{at}.arm", "required: treatment or control")
    event: dict[str, Any] = {
        "type": kind,
        "flag": flag,
        "segment": segment,
        "arm": arm,
        "ts": _timestamp(raw.get("timestamp"), f"{at}.timestamp", now),
    }
    if kind == "inference":
        event["ms"] = _number(raw.get("ms"), f"{at}.ms", highest=MAX_INFERENCE_MS)
        ok = raw.get("ok", True)
        if not isinstance(ok, bool):
            raise EventsInvalid(f"{at}.ok", "must be true or false")
        event["ok"] = ok
    elif kind == "energy":
        event["millijoules"] = _number(
            raw.get("millijoules"), f"{at}.millijoules", highest=MAX_MILLIJOULES
        )
    elif kind == "feedback":
        rating = raw.get("rating")
        if rating is None:
            raise EventsInvalid(f"{at}.rating", "required")
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise EventsInvalid(f"{at}.rating", "must be an integer from 1 to 5")
        event["rating"] = rating
    return event_id, event


def parse_batch(body: Mapping[str, Any], *, flags: Container[str], now: float) -> EventBatch:
    """Validate a request body against the environment's flag keys at `now` (epoch seconds)."""
    unknown = sorted(set(body) - _BODY_FIELDS)
    if unknown:
        raise EventsInvalid(unknown[0][:40], "unknown field")
    targeting_key = _text(body.get("targetingKey"), "targetingKey", longest=MAX_TARGETING_KEY)
    raw_events = body.get("events")
    if raw_events is None:
        raise EventsInvalid("events", "required")
    if not isinstance(raw_events, list):
        raise EventsInvalid("events", "must be a list of events")
    if len(raw_events) > MAX_EVENTS:
        raise EventsInvalid("events", f"more than {MAX_EVENTS} events in one batch")
    ids: list[str] = []
    events: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        event_id, event = _event(raw, f"events[{index}]", flags, now)
        ids.append(event_id)
        events.append(event)
    return EventBatch(targeting_key, tuple(ids), tuple(events))
