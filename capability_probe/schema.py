"""Probe validation and normalisation: types, ranges, browser quantisation.

The fields, their ranges and where each goes are tabled in docs/capability-signals.md.

Every problem is reported with the field it concerns (`device.memoryGb: …`). Unknown fields
are rejected by name. Missing signals stay missing. Before anything else the whole body goes
through `ops.json_input.check_json`: a NUL, another control character or a lone surrogate in
any key or string (which PostgreSQL or orjson would refuse later) is a 400 naming the field.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from capability_probe import vocabulary
from capability_probe.vocabulary import (
    BENCHMARK_MS,
    BENCHMARK_WORKLOAD,
    TEXT_LENGTH,
    CapabilityField,
    Kind,
    Section,
)
from ops.json_input import JsonInputError, check_json

PROBE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class ProbeInvalid(ValueError):
    """A probe that cannot be taken in; the message starts with the field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


# Consent states (docs/capability-signals.md): only `granted` lets anything be stored;
# `denied` also makes the server forget what it holds about the client; `pending` (the user
# has not decided yet) stores nothing and forgets nothing. The booleans are aliases.
GRANTED, DENIED, PENDING = "granted", "denied", "pending"
CONSENT_STATES = (GRANTED, DENIED, PENDING)


CONSENT_PROBLEM = "must be granted, denied or pending (or true / false)"


def consent_state(value: Any) -> str | None:
    """The consent state `value` names (true/false alias granted/denied); None: none."""
    if value is True:
        return GRANTED
    if value is False:
        return DENIED
    if isinstance(value, str) and value in CONSENT_STATES:
        return value
    return None


@dataclass(frozen=True)
class Probe:
    """A validated, normalised probe. `profile` uses the profile's column names."""

    probe_id: str
    client_id: str
    consent: str  # one of CONSENT_STATES
    profile: dict[str, Any]
    runtime: dict[str, Any]
    # The customer backend's HMAC of client_id (signed identities); "" when not sent.
    identity_hash: str = ""


def _number(field: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProbeInvalid(field, f"must be a number between {low:g} and {high:g}")
    if not low <= value <= high:
        raise ProbeInvalid(field, f"must be between {low:g} and {high:g}, got {value:g}")
    return float(value)


def _boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ProbeInvalid(field, "must be true or false")
    return value


def _text(field: str, value: Any, limit: int = TEXT_LENGTH) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ProbeInvalid(field, f"must be a string of at most {limit} characters")
    return value.strip()


def _choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ProbeInvalid(field, f"must be one of {', '.join(choices)}")
    return str(value)


def normalise(field: CapabilityField, where: str, value: Any) -> Any:
    """A probe's (present) value of `field`, checked and normalised as the vocabulary says;
    raises ProbeInvalid naming `where`."""
    if field.kind is Kind.BOOL:
        return _boolean(where, value)
    if field.kind is Kind.ENUM:
        return _choice(where, value, field.choices)
    if field.kind is Kind.STR:
        return _text(where, value, field.max_length)
    assert field.accepted is not None, field.wire
    return field.quantise(_number(where, value, *field.accepted))


# section -> field name in the probe -> field (the benchmark section is read on its own)
FIELDS: dict[str, dict[str, CapabilityField]] = {
    section.value: {field.probe_key: field for field in vocabulary.in_section(section)}
    for section in (Section.DEVICE, Section.NETWORK, Section.PLATFORM)
}
TOP_LEVEL = {"probeId", "clientId", "identityHash", "consent", *(s.value for s in Section)}
IDENTITY_HASH = re.compile(r"^[0-9a-fA-F]{64}$")


def _section(name: str, raw: Any) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ProbeInvalid(name, "must be an object")
    unknown = sorted(set(raw) - set(FIELDS.get(name, {})))
    if unknown:
        raise ProbeInvalid(f"{name}.{unknown[0]}", "unknown field")
    return raw


def parse_probe(raw: Any) -> Probe:
    """Validate and normalise a probe body; raises ProbeInvalid naming the field."""
    if not isinstance(raw, Mapping):
        raise ProbeInvalid("body", "must be a JSON object")
    try:
        check_json(dict(raw), field="")
    except JsonInputError as exc:
        raise ProbeInvalid(exc.field, exc.message) from exc
    unknown = sorted(set(raw) - TOP_LEVEL)
    if unknown:
        raise ProbeInvalid(unknown[0], "unknown field")
    probe_id = raw.get("probeId")
    if not isinstance(probe_id, str) or not PROBE_ID.match(probe_id):
        raise ProbeInvalid("probeId", "required: 1 to 64 letters, digits or - _ . :")
    client_id = raw.get("clientId")
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= 200:
        raise ProbeInvalid("clientId", "required: a string of 1 to 200 characters")
    identity_hash = raw.get("identityHash", "")
    if not isinstance(identity_hash, str) or not (
        identity_hash == "" or IDENTITY_HASH.match(identity_hash)
    ):
        raise ProbeInvalid("identityHash", "must be 64 hex digits: HMAC-SHA256 of clientId")
    consent = consent_state(raw.get("consent", True))
    if consent is None:
        raise ProbeInvalid("consent", CONSENT_PROBLEM)
    profile: dict[str, Any] = {}
    runtime: dict[str, Any] = {}
    for section in ("device", "network", "platform"):
        for name, value in _section(section, raw.get(section)).items():
            if value is None:
                continue  # an API the client does not have: missing stays missing
            field = FIELDS[section][name]
            normalised = normalise(field, f"{section}.{name}", value)
            (profile if field.column is not None else runtime)[field.stored_as] = normalised
    for measured, samples in vocabulary.MEASUREMENTS:
        # A measurement without the samples behind it (or the reverse) says nothing usable.
        pair = {measured.stored_as in profile: measured, samples.stored_as in profile: samples}
        if len(pair) == 2:
            raise ProbeInvalid(
                f"network.{pair[False].probe_key}", f"required with network.{pair[True].probe_key}"
            )
    benchmark = raw.get("benchmark")
    if benchmark is not None:
        if not isinstance(benchmark, Mapping):
            raise ProbeInvalid("benchmark", "must be an object with ms and workload")
        ms, workload = BENCHMARK_MS, BENCHMARK_WORKLOAD
        unknown = sorted(set(benchmark) - {ms.probe_key, workload.probe_key})
        if unknown:
            raise ProbeInvalid(f"benchmark.{unknown[0]}", "unknown field")
        if benchmark.get(ms.probe_key) is not None:
            profile[ms.stored_as] = normalise(ms, "benchmark.ms", benchmark[ms.probe_key])
            profile[workload.stored_as] = normalise(
                workload, "benchmark.workload", benchmark.get(workload.probe_key, "")
            )
    return Probe(probe_id, client_id, consent, profile, runtime, identity_hash)


def probe_fingerprint(probe: Probe) -> str:
    """SHA-256 of what a probe says (normalised): equal for a client's retries of one probe."""
    content = {"profile": probe.profile, "runtime": probe.runtime}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
