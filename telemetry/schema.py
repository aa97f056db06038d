"""The event batch a client sends, validated and normalised (pure Python, no Django).

A batch is all or nothing: the first bad field rejects it, named as `events[3].rating`.
Normalised events keep only what the fold needs (no event id, no targeting key) and carry
their time as epoch seconds.

Every event echoes the `decisionToken` of the decision it is about (see
`access.decision_tokens`): its segment and arm are the token's, never the client's. A
client may still send `segment` and `arm` (older clients do); a claim that differs from its
token refuses the batch. A flag whose decision carried no token (no rollout plan, or no
targeting key) has nothing for an event to count in, so such an event is refused too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from access.decision_tokens import MAX_TOKEN, Served, TokenInvalid
from capability_probe.schema import CONSENT_PROBLEM, GRANTED, consent_state
from ops.json_input import text_problem

EVENT_TYPES = (
    "exposure",
    "inference",
    "crash",
    "energy",
    "feedback",
    "suggestion",
    "model_update",
    "freshness",
)
ARMS = ("treatment", "control", "none")
UPDATE_DELIVERIES = ("full", "delta")
MAX_MODEL_BYTES = 64 * 1024**3
MAX_FRESHNESS_HOURS = 24 * 365.0
MAX_VERSION = 40
MAX_EVENTS = 1000
MAX_TARGETING_KEY = 256
MAX_EVENT_ID = 64
MAX_SEGMENT = 63
MAX_INFERENCE_MS = 600_000.0
MAX_MILLIJOULES = 1e7
MAX_TIMESTAMP_TEXT = 64
OLDEST_S = 24 * 3600.0  # events older than this are refused
NEWEST_S = 300.0  # clock skew tolerated ahead of the server

_COMMON_FIELDS = frozenset({"id", "type", "flag", "segment", "arm", "timestamp", "decisionToken"})
_TYPE_FIELDS: dict[str, frozenset[str]] = {
    "exposure": frozenset(),
    "inference": frozenset({"ms", "ok"}),
    "crash": frozenset(),
    "energy": frozenset({"millijoules"}),
    "feedback": frozenset({"rating"}),
    # On-device quality (docs/edge-models.md): the user accepted or dismissed the model's
    # output; a model download; hours since the on-device personalisation data was refreshed.
    "suggestion": frozenset({"accepted"}),
    "model_update": frozenset({"from", "to", "delivery", "ok", "bytes"}),
    "freshness": frozenset({"hours"}),
}
_BODY_FIELDS = frozenset({"targetingKey", "events", "consent"})


class EventsInvalid(ValueError):
    """A batch that cannot be accepted; `field` names the first offending field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Tokens(Protocol):
    """Checks a decision token echoed for a flag (`access.decision_tokens.TokenVerifier`)."""

    def verify(self, token: str, flag_key: str) -> Served: ...


@dataclass(frozen=True, slots=True)
class EventBatch:
    """One client's validated batch: its event ids (for deduplication), normalised events,
    and whether each event's token was issued to a signed identity."""

    targeting_key: str
    ids: tuple[str, ...]
    events: tuple[dict[str, Any], ...]
    signed: tuple[bool, ...] = ()
    # The user's consent as the client holds it (capability_probe.schema.CONSENT_STATES);
    # a batch without one comes from a client that predates consent states: granted.
    consent: str = GRANTED

    def only(self, keep: Sequence[bool]) -> EventBatch:
        """The batch with only the events whose `keep` is true."""
        picked = [i for i, kept in enumerate(keep) if kept]
        return EventBatch(
            self.targeting_key,
            tuple(self.ids[i] for i in picked),
            tuple(self.events[i] for i in picked),
            tuple(self.signed[i] for i in picked),
            self.consent,
        )


def _text(value: Any, field: str, *, longest: int) -> str:
    if value is None:
        raise EventsInvalid(field, "required")
    if not isinstance(value, str):
        raise EventsInvalid(field, "must be a string")
    if not value or len(value) > longest:
        raise EventsInvalid(field, f"must be 1 to {longest} characters")
    # PostgreSQL refuses NUL in text: refused here, it cannot stall the fold later.
    problem = text_problem(value)
    if problem is not None:
        raise EventsInvalid(field, problem)
    return value


def _claim(raw: Mapping[str, Any], name: str, at: str, served: str, known: Container[str]) -> None:
    """A client's own `arm`, when it sends one, must be the token's."""
    claimed = raw.get(name)
    if claimed is None:
        return
    field = f"{at}.{name}"
    text = _text(claimed, field, longest=MAX_SEGMENT)
    if text == served:
        return
    if text not in known:
        raise EventsInvalid(field, f"unknown {name} {text!r}")
    raise EventsInvalid(field, f"{text!r} is not the {name} of this event's decisionToken")


def _segment_claim(
    raw: Mapping[str, Any], at: str, served: int, identities: Mapping[str, int]
) -> None:
    """A client's own `segment` (a key), when it sends one, must name the token's segment
    (an identity) under the snapshot's keys."""
    claimed = raw.get("segment")
    if claimed is None:
        return
    field = f"{at}.segment"
    text = _text(claimed, field, longest=MAX_SEGMENT)
    identity = identities.get(text)
    if identity == served:
        return
    if identity is None:
        raise EventsInvalid(field, f"unknown segment {text!r}")
    raise EventsInvalid(field, f"{text!r} is not the segment of this event's decisionToken")


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


def _event(
    raw: Any,
    at: str,
    flags: Container[str],
    segments: Mapping[str, int],
    tokens: Tokens,
    now: float,
) -> tuple[str, dict[str, Any], bool]:
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
    token = _text(raw.get("decisionToken"), f"{at}.decisionToken", longest=MAX_TOKEN)
    try:
        served = tokens.verify(token, flag)
    except TokenInvalid as exc:
        raise EventsInvalid(f"{at}.decisionToken", str(exc)) from None
    _segment_claim(raw, at, served.segment, segments)
    _claim(raw, "arm", at, served.arm, ARMS)
    event: dict[str, Any] = {
        "type": kind,
        "flag": flag,
        "segment": served.segment,
        "arm": served.arm,
        "ts": _timestamp(raw.get("timestamp"), f"{at}.timestamp", now),
    }
    if served.rung:
        event["rung"] = served.rung
    if served.model:
        event["model"] = served.model
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
    elif kind == "suggestion":
        event["accepted"] = _boolean(raw.get("accepted"), f"{at}.accepted")
    elif kind == "freshness":
        event["hours"] = _number(raw.get("hours"), f"{at}.hours", highest=MAX_FRESHNESS_HOURS)
    elif kind == "model_update":
        event.update(_model_update(raw, at, served.model))
    return event_id, event, served.signed


def _boolean(value: Any, field: str) -> bool:
    if value is None:
        raise EventsInvalid(field, "required")
    if not isinstance(value, bool):
        raise EventsInvalid(field, "must be true or false")
    return value


def _model_update(raw: Mapping[str, Any], at: str, served: str) -> dict[str, Any]:
    """A download of the model version the decision served (`to` must be that version)."""
    if not served:
        raise EventsInvalid(f"{at}.decisionToken", "served no model version: nothing to update")
    to = _text(raw.get("to"), f"{at}.to", longest=MAX_VERSION)
    if to != served:
        raise EventsInvalid(f"{at}.to", f"{to!r} is not the version this decision served")
    source = raw.get("from")
    if source is not None:
        source = _text(source, f"{at}.from", longest=MAX_VERSION)
    delivery = raw.get("delivery")
    if delivery not in UPDATE_DELIVERIES:
        raise EventsInvalid(f"{at}.delivery", "must be full or delta")
    size = raw.get("bytes")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_MODEL_BYTES:
        raise EventsInvalid(f"{at}.bytes", f"must be a whole number from 0 to {MAX_MODEL_BYTES}")
    return {"delivery": delivery, "ok": _boolean(raw.get("ok"), f"{at}.ok"), "bytes": size}


def parse_batch(
    body: Mapping[str, Any],
    *,
    flags: Container[str],
    segments: Mapping[str, int],
    tokens: Callable[[str], Tokens],
    now: float,
) -> EventBatch:
    """Validate a request body against the environment's flag keys and segments (key ->
    identity, as the snapshot has them) at `now` (epoch seconds); `tokens(targeting key)`
    checks the decision tokens of that client. Events carry their segment's identity."""
    unknown = sorted(set(body) - _BODY_FIELDS)
    if unknown:
        raise EventsInvalid(unknown[0][:40], "unknown field")
    targeting_key = _text(body.get("targetingKey"), "targetingKey", longest=MAX_TARGETING_KEY)
    consent = consent_state(body.get("consent", GRANTED))
    if consent is None:
        raise EventsInvalid("consent", CONSENT_PROBLEM)
    raw_events = body.get("events")
    if raw_events is None:
        raise EventsInvalid("events", "required")
    if not isinstance(raw_events, list):
        raise EventsInvalid("events", "must be a list of events")
    if len(raw_events) > MAX_EVENTS:
        raise EventsInvalid("events", f"more than {MAX_EVENTS} events in one batch")
    ids: list[str] = []
    events: list[dict[str, Any]] = []
    signed: list[bool] = []
    verifier = tokens(targeting_key)
    for index, raw in enumerate(raw_events):
        at = f"events[{index}]"
        event_id, event, by_signed = _event(raw, at, flags, segments, verifier, now)
        ids.append(event_id)
        events.append(event)
        signed.append(by_signed)
    return EventBatch(targeting_key, tuple(ids), tuple(events), tuple(signed), consent)
