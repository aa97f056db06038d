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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ops.json_input import JsonInputError, check_json

PROBE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
EFFECTIVE_TYPES = ("slow-2g", "2g", "3g", "4g")
PRESSURE_STATES = ("nominal", "fair", "serious", "critical")


class ProbeInvalid(ValueError):
    """A probe that cannot be taken in; the message starts with the field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Probe:
    """A validated, normalised probe. `profile` uses the profile's column names."""

    probe_id: str
    client_id: str
    consent: bool
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


def _text(field: str, value: Any, limit: int = 64) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ProbeInvalid(field, f"must be a string of at most {limit} characters")
    return value.strip()


def _choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ProbeInvalid(field, f"must be one of {', '.join(choices)}")
    return str(value)


def _memory_gb(field: str, value: Any) -> float:
    # Browsers report powers of two (Chrome: up to 32 on desktop); native apps report the
    # total RAM. Quantise both the browser's way: the power of two at or below, capped.
    gb = _number(field, value, 0.01, 4096)
    return float(min(32.0, max(0.25, 2 ** math.floor(math.log2(gb) + 1e-9))))


def _rtt_ms(field: str, value: Any) -> int:
    # Chromium rounds RTT to 50 ms and caps it at 3 s.
    return int(min(3000, round(_number(field, value, 0, 600_000) / 50) * 50))


def _downlink(field: str, value: Any) -> float:
    # Chromium rounds downlink to 50 kbps and caps it at 10 Mbps.
    return float(min(10.0, round(_number(field, value, 0, 100_000) * 20) / 20))


Normaliser = Callable[[str, Any], Any]

# section -> field -> (profile column or runtime key, normaliser, goes to runtime?)
FIELDS: dict[str, dict[str, tuple[str, Normaliser, bool]]] = {
    "device": {
        "memoryGb": ("memory_gb", _memory_gb, False),
        "cores": ("cores", lambda f, v: int(min(64, _number(f, v, 1, 1024))), False),
        "webgpu": ("webgpu", _boolean, False),
        "shaderF16": ("shader_f16", _boolean, False),
        "webnn": ("webnn", _boolean, False),
        "wasmSimd": ("wasm_simd", _boolean, False),
        "wasmThreads": ("wasm_threads", _boolean, False),
        "storageGb": ("storage_gb", lambda f, v: round(_number(f, v, 0, 1e6), 1), False),
        "mediaPerformanceClass": (
            "media_performance_class",
            lambda f, v: int(_number(f, v, 0, 100)),
            False,
        ),
        "npu": ("npu", _boolean, False),
        "batteryLevel": ("batteryLevel", lambda f, v: round(_number(f, v, 0, 1), 2), True),
        "charging": ("charging", _boolean, True),
        "computePressure": (
            "computePressure",
            lambda f, v: _choice(f, v, PRESSURE_STATES),
            True,
        ),
    },
    "network": {
        "effectiveType": (
            "effective_type",
            lambda f, v: _choice(f, v, EFFECTIVE_TYPES),
            False,
        ),
        "rttMs": ("rtt_ms", _rtt_ms, False),
        "downlinkMbps": ("downlink_mbps", _downlink, False),
        "saveData": ("save_data", _boolean, False),
        "online": ("online", _boolean, True),
    },
    "platform": {
        "os": ("os", _text, False),
        "osVersion": ("os_version", _text, False),
        "browser": ("browser", _text, False),
        "browserVersion": ("browser_version", _text, False),
        "appVersion": ("app_version", _text, False),
        "mobile": ("mobile", _boolean, False),
    },
}
TOP_LEVEL = {
    "probeId",
    "clientId",
    "identityHash",
    "consent",
    "device",
    "network",
    "platform",
    "benchmark",
}
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
    consent = raw.get("consent", True)
    if not isinstance(consent, bool):
        raise ProbeInvalid("consent", "must be true or false")
    profile: dict[str, Any] = {}
    runtime: dict[str, Any] = {}
    for section in ("device", "network", "platform"):
        for name, value in _section(section, raw.get(section)).items():
            if value is None:
                continue  # an API the client does not have: missing stays missing
            target, normalise, is_runtime = FIELDS[section][name]
            normalised = normalise(f"{section}.{name}", value)
            (runtime if is_runtime else profile)[target] = normalised
    benchmark = raw.get("benchmark")
    if benchmark is not None:
        if not isinstance(benchmark, Mapping):
            raise ProbeInvalid("benchmark", "must be an object with ms and workload")
        unknown = sorted(set(benchmark) - {"ms", "workload"})
        if unknown:
            raise ProbeInvalid(f"benchmark.{unknown[0]}", "unknown field")
        if benchmark.get("ms") is not None:
            profile["benchmark_ms"] = round(
                _number("benchmark.ms", benchmark["ms"], 0.001, 600_000), 2
            )
            profile["benchmark_workload"] = _text(
                "benchmark.workload", benchmark.get("workload", "")
            )
    return Probe(probe_id, client_id, consent, profile, runtime, identity_hash)


def probe_fingerprint(probe: Probe) -> str:
    """SHA-256 of what a probe says (normalised): equal for a client's retries of one probe."""
    content = {"profile": probe.profile, "runtime": probe.runtime}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
