"""Examples for the OpenAPI document: what a client sends and what the server answers.

Taken from answers of a server running the demo data (`make run`); tests/api/test_openapi.py
checks each against its schema and sends the request examples to the real views, so an
example that stops being true fails the suite.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from telemetry.schema import MAX_INFERENCE_MS

CONTEXT: dict[str, Any] = {
    "targetingKey": "user-1234",
    "platform": "web",
    "appVersion": "3.4.0",
    "memoryGb": 8,
    "webgpu": True,
    "effectiveType": "4g",
    "rttMs": 50,
    "benchmarkMs": 18.5,
}

_ISSUED = "3.6b148960.t0.1.edge.2.0.0.uHd2xnBqBR-y8XEt"
_EDGE_METADATA: dict[str, Any] = {
    "enabled": True,
    "rung": "edge",
    "segment": "fast-computers-webgpu",
    "arm": "treatment",
    "stage": 0,
    "percentage": 100,
    "rolloutState": "complete",
    "decisionToken": _ISSUED,
}
_DEMO_MODELS = "http://127.0.0.1:8000/static/edgeflags/models"
# The on-device rung's model version (the Edgeflags API nests it; OFREP flattens it).
_SERVED_MODEL: dict[str, Any] = {
    "name": "tiny-reply",
    "version": "2.0.0",
    "format": "onnx",
    "url": f"{_DEMO_MODELS}/tiny-reply-2.0.0.bin",
    "sizeBytes": 196_646,
    "sha256": "00491ab1dc224f2accf1ce44f2bdfea9d98b9569daf649694e9981d9b217beb0",
    "update": "full",
}
OFREP_DECISION: dict[str, Any] = {
    "key": "smart-compose",
    "value": "edge",
    "variant": "edge",
    "reason": "TARGETING_MATCH",
    "metadata": {
        **_EDGE_METADATA,
        **{f"model{k[:1].upper()}{k[1:]}": v for k, v in _SERVED_MODEL.items()},
    },
}
DECISION: dict[str, Any] = {
    **OFREP_DECISION,
    "metadata": {**_EDGE_METADATA, "model": _SERVED_MODEL},
    "uiState": {
        "component": "SmartCompose",
        "copy": {"title": "Smart compose", "badge": "On-device"},
        "options": {"model": "tiny-reply-v1", "maxTokens": 48},
    },
    "unmet": {},
}
EVENT_STREAMS: list[dict[str, Any]] = [
    {
        "type": "sse",
        "url": "http://127.0.0.1:8001/stream/v1/flags?key=efc_…",
        "inactivityDelaySec": 120,
    }
]
DECISIONS: dict[str, Any] = {
    "environment": "production",
    "snapshotVersion": 4,
    "flags": {"smart-compose": DECISION},
    "eventStreams": EVENT_STREAMS,
    "refreshConnections": EVENT_STREAMS,
}
OFREP_BULK: dict[str, Any] = {
    "flags": [
        {
            "key": "inbox-digest",
            "value": False,
            "variant": "disabled",
            "reason": "DEFAULT",
            "metadata": {"enabled": False},
        },
        OFREP_DECISION,
    ],
    "eventStreams": EVENT_STREAMS,
    "refreshConnections": EVENT_STREAMS,
}
OFREP_CONFIGURATION: dict[str, Any] = {
    "name": "edgeflags",
    "capabilities": {
        "cacheInvalidation": {"polling": {"enabled": True, "minPollingIntervalMs": 1000}},
        "flagEvaluation": {"supportedTypes": ["boolean", "string", "int", "float", "object"]},
    },
}

PROBE: dict[str, Any] = {
    "probeId": "probe-0001",
    "clientId": "device-42",
    "consent": True,
    "device": {"memoryGb": 8, "cores": 8, "webgpu": True, "shaderF16": True, "charging": True},
    "network": {
        "effectiveType": "4g",
        "rttMs": 40,
        "downlinkMbps": 10,
        "saveData": False,
        "measuredRttMs": 34,
        "measuredRttSamples": 5,
        "measuredDownlinkMbps": 48.37,
        "measuredDownlinkSamples": 3,
    },
    "platform": {"os": "macOS", "browser": "Chrome", "appVersion": "3.4.0"},
    "benchmark": {"ms": 18.5, "workload": "matmul-f32-64x64-v1"},
}
PROBE_ANSWER: dict[str, Any] = {
    "segment": {"key": "fast-computers-webgpu", "label": "fast-computers-webgpu"},
    "consent": "granted",
    "stored": True,
    "duplicate": False,
    "profile": {
        "memoryGb": 8.0,
        "cores": 8,
        "webgpu": True,
        "shaderF16": True,
        "effectiveType": "4g",
        "rttMs": 50,
        "downlinkMbps": 10.0,
        "measuredRttMs": 30,
        "measuredRttSamples": 5,
        "measuredDownlinkMbps": 48.35,
        "measuredDownlinkSamples": 3,
        "saveData": False,
        "os": "macOS",
        "browser": "Chrome",
        "appVersion": "3.4.0",
        "benchmarkMs": 18.5,
    },
    "decisions": DECISIONS,
}
ERASED: dict[str, Any] = {"erased": True}
ERASE_REQUEST: dict[str, Any] = {"clientId": "device-42"}

EVENTS: dict[str, Any] = {
    "targetingKey": "user-1234",
    "events": [
        {"id": "e-0001", "type": "exposure", "flag": "smart-compose", "decisionToken": _ISSUED},
        {
            "id": "e-0002",
            "type": "inference",
            "flag": "smart-compose",
            "decisionToken": _ISSUED,
            "ms": 42.5,
            "ok": True,
        },
        {
            "id": "e-0003",
            "type": "energy",
            "flag": "smart-compose",
            "decisionToken": _ISSUED,
            "millijoules": 120,
        },
        {
            "id": "e-0004",
            "type": "feedback",
            "flag": "smart-compose",
            "decisionToken": _ISSUED,
            "rating": 4,
        },
        {
            "id": "e-0005",
            "type": "suggestion",
            "flag": "smart-compose",
            "decisionToken": _ISSUED,
            "accepted": True,
        },
        {
            "id": "e-0006",
            "type": "model_update",
            "flag": "smart-compose",
            "decisionToken": _ISSUED,
            "from": "1.0.0",
            "to": "2.0.0",
            "delivery": "full",
            "ok": True,
            "bytes": 196_646,
        },
        {
            "id": "e-0007",
            "type": "freshness",
            "flag": "smart-compose",
            "decisionToken": _ISSUED,
            "hours": 6.5,
        },
    ],
}
EVENTS_ACCEPTED: dict[str, Any] = {"accepted": 7, "duplicates": 0, "uncounted": 0}

SNAPSHOT: dict[str, Any] = {
    "schema": 1,
    "environment": "production",
    "version": 4,
    "publishedAt": "2026-12-05T22:00:00Z",
    "flags": {},
    "segments": [],
    "segmentLabels": {},
    "segmentIdentities": {"save-data": 0},
    "capabilityModel": {},
}


def client_errors() -> dict[int, dict[str, Any]]:
    """One true error body per status the client API answers (the texts are the views')."""
    per_key = settings.EDGEFLAGS_RATE_LIMIT_PER_KEY
    return {
        400: {
            "errorCode": "INVALID_CONTEXT",
            "errorDetails": "context.targetingKey: must be a string",
        },
        401: {"errorCode": "UNAUTHORIZED", "errorDetails": "Authorization: unknown API key"},
        403: {
            "errorCode": "FORBIDDEN",
            "errorDetails": "Authorization: this endpoint needs a server key",
        },
        404: {
            "key": "smart-compose",
            "errorCode": "FLAG_NOT_FOUND",
            "errorDetails": "flag 'smart-compose' does not exist",
        },
        405: {
            "errorCode": "METHOD_NOT_ALLOWED",
            "errorDetails": "method: GET not allowed (use POST)",
        },
        411: {
            "errorCode": "LENGTH_REQUIRED",
            "errorDetails": "Content-Length: required (no chunked bodies)",
        },
        413: {
            "errorCode": "PAYLOAD_TOO_LARGE",
            "errorDetails": f"body: larger than {settings.EDGEFLAGS_MAX_BODY_BYTES} bytes",
        },
        429: {
            "errorCode": "RATE_LIMITED",
            "errorDetails": f"Authorization: more than {per_key:g} requests/s for this key",
        },
        503: {
            "errorCode": "GENERAL",
            "errorDetails": "snapshot: no ruleset published for this environment yet",
        },
    }


PROBE_INVALID = {
    "errorCode": "INVALID_PROBE",
    "errorDetails": "device.memoryGb: must be a number between 0.01 and 4096",
}
EVENTS_INVALID = {
    "errorCode": "INVALID_EVENT",
    "errorDetails": f"events[1].ms: must be greater than 0 and at most {MAX_INFERENCE_MS:g}",
}
EVENTS_UNAVAILABLE = {
    "errorCode": "GENERAL",
    "errorDetails": "buffer: unavailable; nothing was stored, send the batch again later",
}

# The management API (DRF).
FLAG_STATE: dict[str, Any] = {
    "environment": "production",
    "enabled": True,
    "offValue": False,
    "variants": [],
    "dependencies": [],
    "rules": 2,
    "modelVersion": None,
}
FLAG: dict[str, Any] = {
    "key": "inbox-digest",
    "kind": "boolean",
    "description": "AI summary of the day's leads",
    "tags": ["ai", "cloud"],
    "archived": False,
    "states": [FLAG_STATE],
}
FLAG_STATE_CHANGE: dict[str, Any] = {"enabled": False, "reason": "INC-2041: digest emails late"}
_RUN = [{"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"}]
_DOWNLOAD = [{"contextName": "metered", "operator": "NOT_IN", "values": ["true"]}]
MODEL_REGISTER: dict[str, Any] = {
    "name": "tiny-reply",
    "version": "3.1.0",
    "url": "https://models.example.com/tiny-reply/3.1.0.onnx",
    "sizeBytes": 48_234_496,
    "sha256": "9f2c6a1e0d4b7f3a5c8e1b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a",
    "format": "onnx",
    "requirements": _RUN,
    "downloadRequirements": _DOWNLOAD,
    "delta": {
        "from": "3.0.0",
        "url": "https://models.example.com/tiny-reply/3.0.0-3.1.0.delta",
        "sizeBytes": 6_291_456,
        "sha256": "3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d",
    },
    "notes": "re-quantised embeddings",
    "reason": "CHG-311: smaller embeddings",
}
MODEL_REGISTERED: dict[str, Any] = {
    "flag": "smart-compose",
    "rung": "edge",
    **{k: v for k, v in MODEL_REGISTER.items() if k != "reason"},
    "createdAt": "2026-12-07T15:10:00Z",
    "servedIn": [],
}
MODEL: dict[str, Any] = {
    "flag": "smart-compose",
    "rung": "edge",
    "name": "tiny-reply",
    "version": "2.0.0",
    "url": "http://127.0.0.1:8000/static/edgeflags/models/tiny-reply-2.0.0.bin",
    "sizeBytes": 196_646,
    "sha256": "00491ab1dc224f2accf1ce44f2bdfea9d98b9569daf649694e9981d9b217beb0",
    "format": "onnx",
    "requirements": _RUN,
    "downloadRequirements": _DOWNLOAD,
    "delta": None,
    "notes": "int8, 4-bit embeddings",
    "createdAt": "2026-12-07T15:00:00Z",
    "servedIn": ["demo", "production"],
}
MODEL_SERVE: dict[str, Any] = {"modelVersion": "3.0.0", "reason": "CHG-310: v3 everywhere"}
SEGMENT_ROLLOUT: dict[str, Any] = {
    "segment": "fast-computers-webgpu",
    "state": "ramping",
    "stage": 1,
    "percentage": 25,
    "holdReason": "",
    "stageStartedAt": "2026-12-05T22:00:00Z",
    "lastVerdict": {
        "action": "continue",
        "metric": None,
        "threshold": 33.333333,
        "metrics": [
            {
                "metric": "latency",
                "estimate": 1.8,
                "interval": [-4.2, 7.9],
                "nTreatment": 412,
                "nControl": 1236,
                "eValue": 1.7,
                "logEValue": 0.530628,
                "logEValueStage": 0.530628,
            }
        ],
        "srmBayesFactor": 0.21,
    },
    "lastCheckedAt": "2026-12-05T22:05:00Z",
}
ROLLOUT_START: dict[str, Any] = {
    "reason": "ship the on-device model to capable devices",
    "targetRung": "edge",
    "stages": [
        {"percentage": 5, "minDwellHours": 1},
        {"percentage": 25, "minDwellHours": 4},
        {"percentage": 100},
    ],
    "alpha": 0.05,
    "burnInClients": 50,
    "noDataHours": 24,
    "includedSegments": ["*"],
    "excludedSegments": ["slow-phones-weak-network"],
}
ROLLOUT: dict[str, Any] = {
    "flag": "smart-compose",
    "environment": "production",
    "targetRung": "edge",
    "targetModelVersion": None,
    "stages": ROLLOUT_START["stages"],
    "guardrails": [
        {"metric": "failures", "tau": 0.0, "margin": 0.0, "relative": False},
        {"metric": "latency", "tau": 0.01, "margin": 0.0, "relative": False},
        {"metric": "rating", "tau": 0.1, "margin": 0.0, "relative": False},
        {"metric": "energy", "tau": 0.05, "margin": 0.0, "relative": True},
    ],
    "alpha": 0.05,
    "burnInClients": 50,
    "noDataHours": 24.0,
    "includedSegments": ["*"],
    "excludedSegments": ["slow-phones-weak-network"],
    "segments": [SEGMENT_ROLLOUT],
}
REASON: dict[str, Any] = {"reason": "p95 latency up 40% on fast-computers-webgpu since 14:00"}
ROLLED_BACK: dict[str, Any] = {
    **SEGMENT_ROLLOUT,
    "state": "rolled_back",
}
MANAGEMENT_ERRORS: dict[str, dict[str, Any]] = {
    "400": {"enabld": ["unknown field"]},
    "401": {"detail": "Authentication credentials were not provided."},
    "403": {"detail": "You do not have permission to perform this action."},
    "404": {"detail": "No FlagState matches the given query."},
    "405": {"detail": 'Method "DELETE" not allowed.'},
    "409": {"action": ["only a ramping or held segment can be paused (it is rolled_back)"]},
    "411": {"detail": "Content-Length: required (no chunked bodies)"},
}


def privacy_notice_example() -> dict[str, Any]:
    """GET /api/v1/privacy as it answers for production (built like the live answer)."""
    from api.privacy_notice import privacy_notice

    return privacy_notice("production")
