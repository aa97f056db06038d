"""OpenAPI paths of the client endpoints, which are plain Django views (the hot path).

drf-spectacular documents the DRF management API by introspection; this hook adds the client
API (evaluate, OFREP, probes, events, snapshot) from the contract written here, with limits
and field names read from the code that enforces them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from api import network
from api import openapi_examples as examples
from capability_probe import schema as probe_schema
from capability_probe.vocabulary import BENCHMARK_MS, BENCHMARK_WORKLOAD, CapabilityField, Kind
from telemetry.schema import (
    ARMS,
    EVENT_TYPES,
    MAX_FRESHNESS_HOURS,
    MAX_INFERENCE_MS,
    MAX_MILLIJOULES,
    MAX_MODEL_BYTES,
    MAX_VERSION,
    UPDATE_DELIVERIES,
)

_KEY_SECURITY: list[dict[str, list[str]]] = [{"BearerAuth": []}, {"ApiKeyAuth": []}]
_ERROR = {
    "type": "object",
    "required": ["errorCode", "errorDetails"],
    "properties": {
        "key": {"type": "string"},
        "errorCode": {"type": "string", "example": "INVALID_CONTEXT"},
        "errorDetails": {
            "type": "string",
            "description": "Starts with the name of the field at fault.",
            "example": "context.targetingKey: must be a string",
        },
    },
}
_DECISION: dict[str, Any] = {
    "type": "object",
    "required": ["key", "value", "variant", "reason", "metadata"],
    "properties": {
        "key": {"type": "string"},
        "value": {"description": "boolean, string, number or object, by the flag's kind"},
        "variant": {"type": "string", "description": "'disabled' when no variant applies"},
        "reason": {
            "type": "string",
            "enum": ["STATIC", "TARGETING_MATCH", "SPLIT", "DEFAULT", "DISABLED", "ERROR"],
        },
        "metadata": {
            "type": "object",
            "description": "enabled (Unleash isEnabled), segment, arm, decisionToken, …",
            "additionalProperties": {
                "oneOf": [{"type": "boolean"}, {"type": "string"}, {"type": "number"}]
            },
        },
        "uiState": {
            "type": "object",
            "description": "evaluate and probes only: the served rung's UI state",
        },
        "unmet": {
            "type": "object",
            "description": "evaluate and probes only: each better rung's unmet requirements",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "errorCode": {"type": "string"},
        "errorDetails": {"type": "string"},
    },
}
_MODEL = {
    "type": "object",
    "description": "The on-device rung's model version (docs/edge-models.md): what to run, "
    "and how to fetch it. OFREP answers carry the same as primitives: modelName, "
    "modelVersion, modelUrl, modelSizeBytes, modelSha256, modelFormat, modelUpdate and, "
    "with a delta, modelDeltaFrom, modelDeltaUrl, modelDeltaSizeBytes, modelDeltaSha256.",
    "required": ["name", "version", "url", "sizeBytes", "sha256", "update"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "format": {"type": "string"},
        "url": {"type": "string", "description": "the full artifact"},
        "sizeBytes": {"type": "integer"},
        "sha256": {"type": "string"},
        "update": {
            "type": "string",
            "enum": ["full", "delta", "none"],
            "description": "none: the context's modelVersion is this version; delta: it is "
            "the delta's `from` (fall back to the full artifact if the delta fails its check)",
        },
        "delta": {
            "type": "object",
            "required": ["from", "url", "sizeBytes", "sha256"],
            "properties": {
                "from": {"type": "string"},
                "url": {"type": "string"},
                "sizeBytes": {"type": "integer"},
                "sha256": {"type": "string"},
            },
        },
    },
}
# The Edgeflags API's decision (evaluate, probes): OFREP's, with the model as an object.
_EDGE_DECISION = {
    **_DECISION,
    "properties": {
        **_DECISION["properties"],
        "metadata": {
            **_DECISION["properties"]["metadata"],
            "properties": {"model": _MODEL},
        },
    },
}
# A bulk item whose flag could not be evaluated for this context (OFREP evaluationFailure):
# no value, the provider serves the application's default.
_EVALUATION_FAILURE = {
    "type": "object",
    "required": ["key", "errorCode"],
    "not": {"required": ["value"]},
    "properties": {
        "key": {"type": "string"},
        "errorCode": {"type": "string", "example": "TARGETING_KEY_MISSING"},
        "errorDetails": {"type": "string"},
    },
}
_CONTEXT = {
    "type": "object",
    "description": "Flat attributes; targetingKey is the user id used for sticky bucketing.",
    "properties": {"targetingKey": {"type": "string"}},
    "additionalProperties": True,
}

_CONSENT = {
    "description": "granted: may be stored; pending: the user has not decided, nothing is "
    "stored; denied: nothing is stored and what the environment held about the client is "
    "forgotten (for an identity it trusts). true and false are aliases of granted and denied.",
    "oneOf": [
        {"type": "string", "enum": ["granted", "denied", "pending"]},
        {"type": "boolean"},
    ],
    "default": True,
}
_EVENT_BATCH = {
    "type": "object",
    "required": ["targetingKey", "events"],
    "properties": {
        "consent": _CONSENT,
        "targetingKey": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "description": "The client id; only its keyed hash is kept.",
        },
        "events": {
            "type": "array",
            "maxItems": 1000,
            "items": {
                "type": "object",
                "required": ["id", "type", "flag", "decisionToken"],
                "properties": {
                    "id": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 64,
                        "description": "Client-generated; resent within "
                        f"{settings.EDGEFLAGS_EVENT_DEDUPE_S / 3600:g} h: a duplicate",
                    },
                    "type": {
                        "type": "string",
                        "enum": list(EVENT_TYPES),
                    },
                    "flag": {"type": "string", "description": "A flag of the environment"},
                    "decisionToken": {
                        "type": "string",
                        "maxLength": 200,
                        "description": "The decision's metadata.decisionToken, echoed: the "
                        "server counts the event in the segment, arm, rung and model version "
                        "it records",
                    },
                    "segment": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 63,
                        "description": "Optional; must equal the token's segment",
                    },
                    "arm": {
                        "type": "string",
                        "enum": list(ARMS),
                        "description": "Optional; must equal the token's arm",
                    },
                    "timestamp": {
                        "oneOf": [
                            {"type": "string", "format": "date-time"},
                            {"type": "number", "description": "epoch milliseconds"},
                        ],
                        "description": "Default now; within the last 24 h, at most 5 min ahead",
                    },
                    "ms": {
                        "type": "number",
                        # OpenAPI 3.0's form (a boolean beside minimum), not 3.1's number.
                        "minimum": 0,
                        "exclusiveMinimum": True,
                        "maximum": MAX_INFERENCE_MS,
                        "description": "inference: required",
                    },
                    "ok": {"type": "boolean", "description": "inference: default true"},
                    "millijoules": {
                        "type": "number",
                        "minimum": 0,
                        "exclusiveMinimum": True,
                        "maximum": MAX_MILLIJOULES,
                        "description": "energy: required",
                    },
                    "rating": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 5,
                        "description": "feedback: required",
                    },
                    "accepted": {
                        "type": "boolean",
                        "description": "suggestion: required; the user accepted the model's "
                        "output (true) or dismissed it",
                    },
                    "hours": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": MAX_FRESHNESS_HOURS,
                        "description": "freshness: required; hours since the on-device "
                        "personalisation data was refreshed",
                    },
                    "from": {
                        "type": "string",
                        "maxLength": MAX_VERSION,
                        "description": "model_update: the version held before",
                    },
                    "to": {
                        "type": "string",
                        "maxLength": MAX_VERSION,
                        "description": "model_update: required; the version the decision served",
                    },
                    "delivery": {
                        "type": "string",
                        "enum": list(UPDATE_DELIVERIES),
                        "description": "model_update: required",
                    },
                    "bytes": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": MAX_MODEL_BYTES,
                        "description": "model_update: required; bytes downloaded",
                    },
                },
                "additionalProperties": False,
            },
        },
    },
}


# OFREP ADR 0008: where to listen for changes (the change stream, api/stream).
_EVENT_STREAM: dict[str, Any] = {
    "type": "object",
    "description": "A change stream (Server-Sent Events): on a `refetchEvaluation` event, "
    "refetch with its etag as the flagConfigEtag query parameter. A client key travels in "
    "the URL (EventSource sends no headers); treat the URL as you treat the key.",
    "required": ["type", "url"],
    "properties": {
        "type": {"type": "string", "enum": ["sse"]},
        "url": {"type": "string", "format": "uri"},
        "inactivityDelaySec": {"type": "integer", "minimum": 1},
    },
}
_EVENT_STREAMS: dict[str, Any] = {
    "type": "array",
    "description": "Absent when EDGEFLAGS_STREAM_URL is empty (clients poll).",
    "items": {"$ref": "#/components/schemas/EventStream"},
}
_STREAM_PROPERTIES: dict[str, Any] = {
    "eventStreams": _EVENT_STREAMS,
    "refreshConnections": {
        **_EVENT_STREAMS,
        "description": "eventStreams under the name of "
        "the ADR's first draft, for clients written to it.",
    },
}
# What a refetch triggered by a change event sends back (query parameters, so that a browser
# needs no preflight for them).
_STREAM_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "flagConfigEtag",
        "in": "query",
        "required": False,
        "description": "The etag of the change event that triggered this refetch: the process "
        "answering checks for that version first (400 if it is not an Edgeflags etag).",
        "schema": {"type": "string", "example": '"v12"'},
    },
    {
        "name": "sseEtag",
        "in": "query",
        "required": False,
        "description": "flagConfigEtag under the ADR's first draft's name.",
        "schema": {"type": "string"},
    },
    {
        "name": "flagConfigLastModified",
        "in": "query",
        "required": False,
        "description": "Accepted and ignored (the etag names the version).",
        "schema": {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]},
    },
]

# What evaluate answers, and a probe's answer carries: every decision of one snapshot.
_DECISIONS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "environment": {"type": "string"},
        "snapshotVersion": {"type": "integer"},
        "flags": {
            "type": "object",
            "additionalProperties": {"$ref": "#/components/schemas/EdgeDecision"},
        },
        **_STREAM_PROPERTIES,
    },
}


def _probe_field(field: CapabilityField) -> dict[str, Any]:
    """The JSON type a probe field takes (the server also normalises it)."""
    if field.kind is Kind.ENUM:
        return {"type": "string", "enum": list(field.choices)}
    if field.kind is Kind.BOOL:
        return {"type": "boolean"}
    if field.kind is Kind.STR:
        return {"type": "string", "maxLength": field.max_length}
    return {"type": "number"}


def _probe_section(section: str) -> dict[str, Any]:
    return {
        "type": "object",
        "nullable": True,
        "additionalProperties": False,
        "description": "Fields a client cannot measure are left out (or null), never guessed",
        "properties": {
            name: {**_probe_field(field), "nullable": True}
            for name, field in probe_schema.FIELDS[section].items()
        },
    }


_BENCHMARK_RANGE = dict(zip(("minimum", "maximum"), BENCHMARK_MS.accepted or (), strict=True))
_PROBE: dict[str, Any] = {
    "type": "object",
    "required": ["probeId", "clientId"],
    "additionalProperties": False,
    "properties": {
        "probeId": {"type": "string", "pattern": probe_schema.PROBE_ID.pattern},
        "clientId": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "Stored only as a keyed hash",
        },
        "identityHash": {
            "type": "string",
            "pattern": "^([0-9a-fA-F]{64})?$",
            "description": "HMAC-SHA256 of clientId by the customer's backend (signed identities)",
        },
        "consent": _CONSENT,
        **{section: _probe_section(section) for section in ("device", "network", "platform")},
        "benchmark": {
            "type": "object",
            "nullable": True,
            "additionalProperties": False,
            "properties": {
                BENCHMARK_MS.probe_key: {"type": "number", **_BENCHMARK_RANGE, "nullable": True},
                BENCHMARK_WORKLOAD.probe_key: {
                    "type": "string",
                    "maxLength": BENCHMARK_WORKLOAD.max_length,
                },
            },
        },
    },
}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before sending again",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _erased() -> dict[str, Any]:
    """The answer of both erasure operations."""
    return {
        "description": "Erased (false: nothing was stored)",
        **_json({"type": "object", "properties": {"erased": {"type": "boolean"}}}, examples.ERASED),
    }


def _errors(*codes: int, **bodies: dict[str, Any]) -> dict[str, Any]:
    """The documented error responses, each with a true example body (`bodies` overrides
    one by status: `_400={…}`)."""
    described = {
        304: "Not modified (If-None-Match matched the ETag)",
        400: "Bad request: errorDetails names the field",
        401: "Missing, unknown or revoked API key",
        403: "The key's scope does not allow this endpoint",
        404: "Flag (or route) not found",
        405: "Method not allowed; Allow names the method",
        411: "A body sent without Content-Length (chunked) is refused",
        413: f"Body over {settings.EDGEFLAGS_MAX_BODY_BYTES:,} bytes (events: "
        f"{settings.EDGEFLAGS_EVENTS_MAX_BODY_BYTES:,})",
        429: "Rate limited; Retry-After gives seconds",
        503: "Not available now (no ruleset published yet, or storage down); nothing was "
        "stored: send again after Retry-After seconds",
    }
    samples = examples.client_errors()
    responses: dict[str, Any] = {}
    for code in codes:
        response: dict[str, Any] = {"description": described[code]}
        if code != 304:
            response.update(
                _json(
                    {"$ref": "#/components/schemas/ClientError"},
                    bodies.get(f"_{code}", samples[code]),
                )
            )
        if code in (429, 503):
            response["headers"] = _RETRY_AFTER
        responses[str(code)] = response
    return responses


def _json(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"content": {"application/json": media}}


CLIENT_PATHS: dict[str, Any] = {
    "/api/v1/evaluate": {
        "post": {
            "operationId": "evaluate",
            "tags": ["client"],
            "summary": "Decisions for one client (all flags, or the listed ones)",
            "security": _KEY_SECURITY,
            "parameters": _STREAM_PARAMETERS,
            "requestBody": _json(
                {
                    "type": "object",
                    "properties": {
                        "context": _CONTEXT,
                        "flags": {"type": "array", "items": {"type": "string"}},
                    },
                },
                {"context": examples.CONTEXT, "flags": ["smart-compose"]},
            ),
            "responses": {
                "200": {
                    "description": "Decisions, with an ETag over the body",
                    **_json(_DECISIONS, examples.DECISIONS),
                },
                **_errors(304, 400, 401, 405, 411, 413, 429, 503),
            },
        }
    },
    "/ofrep/v1/evaluate/flags/{key}": {
        "post": {
            "operationId": "ofrep_evaluate_flag",
            "tags": ["OFREP"],
            "summary": "OFREP single flag evaluation",
            "security": _KEY_SECURITY,
            "parameters": [
                {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "requestBody": _json(
                {"type": "object", "properties": {"context": _CONTEXT}},
                {"context": examples.CONTEXT},
            ),
            "responses": {
                "200": {
                    "description": "The decision",
                    **_json({"$ref": "#/components/schemas/Decision"}, examples.OFREP_DECISION),
                },
                **_errors(400, 401, 404, 405, 411, 413, 429, 503),
            },
        }
    },
    "/ofrep/v1/evaluate/flags": {
        "post": {
            "operationId": "ofrep_evaluate_flags",
            "tags": ["OFREP"],
            "summary": "OFREP bulk evaluation (ETag / If-None-Match)",
            "security": _KEY_SECURITY,
            "parameters": _STREAM_PARAMETERS,
            "requestBody": _json(
                {"type": "object", "properties": {"context": _CONTEXT}},
                {"context": examples.CONTEXT},
            ),
            "responses": {
                "200": {
                    "description": "Every flag's decision",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "flags": {
                                    "type": "array",
                                    "items": {
                                        "oneOf": [
                                            {"$ref": "#/components/schemas/Decision"},
                                            {"$ref": "#/components/schemas/EvaluationFailure"},
                                        ]
                                    },
                                },
                                **_STREAM_PROPERTIES,
                            },
                        },
                        examples.OFREP_BULK,
                    ),
                },
                **_errors(304, 400, 401, 405, 411, 413, 429, 503),
            },
        }
    },
    "/api/v1/probes": {
        "post": {
            "operationId": "probe_create",
            "tags": ["client"],
            "summary": "Store a capability probe; answer the segment and every decision",
            "description": "The answer is computed from this probe alone: it never carries a "
            "stored profile, so a replayed probeId or another client's id reads nothing.",
            "security": _KEY_SECURITY,
            "requestBody": _json(_PROBE, examples.PROBE),
            "responses": {
                "200": {
                    "description": "Stored (or a duplicate of a stored probe), with decisions",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "segment": {
                                    "type": "object",
                                    "properties": {
                                        "key": {"type": "string", "nullable": True},
                                        "label": {"type": "string", "nullable": True},
                                    },
                                },
                                "consent": {
                                    "type": "string",
                                    "enum": ["granted", "denied", "pending"],
                                },
                                "stored": {"type": "boolean"},
                                "duplicate": {"type": "boolean"},
                                "profile": {
                                    "type": "object",
                                    "description": "The normalised attributes the server read",
                                },
                                "decisions": _DECISIONS,
                            },
                        },
                        examples.PROBE_ANSWER,
                    ),
                },
                **_errors(400, 401, 405, 411, 413, 429, 503, _400=examples.PROBE_INVALID),
            },
        }
    },
    "/api/v1/network/ping": {
        "get": {
            "operationId": "network_ping",
            "tags": ["client"],
            "summary": "Answer 204 at once: probe.js times it for the measured RTT",
            "security": _KEY_SECURITY,
            "responses": {
                "204": {"description": "Nothing; never cached"},
                **_errors(401, 405, 429),
            },
        }
    },
    "/api/v1/network/download": {
        "get": {
            "operationId": "network_download",
            "tags": ["client"],
            "summary": "N random bytes: probe.js times them for the measured downlink",
            "description": "Rate-limited per key and address "
            "(EDGEFLAGS_NETWORK_DOWNLOADS_PER_ADDRESS per second).",
            "security": _KEY_SECURITY,
            "parameters": [
                {
                    "name": "bytes",
                    "in": "query",
                    "required": True,
                    "schema": {
                        "type": "integer",
                        "minimum": network.MIN_DOWNLOAD_BYTES,
                        "maximum": network.MAX_DOWNLOAD_BYTES,
                    },
                }
            ],
            "responses": {
                "200": {
                    "description": "The bytes (incompressible; never cached)",
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"},
                            "example": "(N random bytes)",
                        }
                    },
                },
                **_errors(400, 401, 405, 429),
            },
        }
    },
    "/api/v1/probes/{clientId}": {
        "delete": {
            "operationId": "probe_erase",
            "tags": ["client"],
            "summary": "Erase what the key's environment stored about one client (server keys)",
            "security": _KEY_SECURITY,
            "parameters": [
                {
                    "name": "clientId",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1},
                }
            ],
            "responses": {
                "200": _erased(),
                # 404: a client id the route cannot hold (a line break) is no route at all.
                **_errors(
                    400,
                    401,
                    403,
                    404,
                    405,
                    429,
                    503,
                    _400={
                        "errorCode": "INVALID_PROBE",
                        "errorDetails": "clientId: contains the control character U+0000 at "
                        "character 3",
                    },
                    _404={
                        "errorCode": "NOT_FOUND",
                        "errorDetails": "path: no endpoint /api/v1/probes/a",
                    },
                ),
            },
        }
    },
    "/ofrep/v1/configuration": {
        "get": {
            "operationId": "ofrep_configuration",
            "tags": ["OFREP"],
            "summary": "OFREP provider configuration: polling interval and supported types",
            "security": _KEY_SECURITY,
            "responses": {
                "200": {
                    "description": "What providers may assume about this service",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                "capabilities": {"type": "object"},
                            },
                        },
                        examples.OFREP_CONFIGURATION,
                    ),
                },
                **_errors(401, 405, 429),
            },
        }
    },
    "/api/v1/events": {
        "post": {
            "operationId": "events",
            "tags": ["client"],
            "summary": "A client's telemetry batch (exposures and outcomes), all or nothing",
            "security": _KEY_SECURITY,
            "requestBody": _json(_EVENT_BATCH, examples.EVENTS),
            "responses": {
                "202": {
                    "description": "Durably buffered; events already accepted are duplicates",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "accepted": {"type": "integer"},
                                "duplicates": {"type": "integer"},
                                "uncounted": {
                                    "type": "integer",
                                    "description": "Accepted but not counted in guardrails",
                                },
                                "uncountedReason": {"type": "string"},
                            },
                        },
                        examples.EVENTS_ACCEPTED,
                    ),
                },
                **_errors(
                    400,
                    401,
                    405,
                    411,
                    413,
                    429,
                    503,
                    _400=examples.EVENTS_INVALID,
                    _503=examples.EVENTS_UNAVAILABLE,
                ),
            },
        }
    },
    "/api/v1/privacy": {
        "get": {
            "operationId": "privacy_notice",
            "tags": ["client"],
            "summary": "What is collected about a client, why, where and for how long, and the "
            "consent states: the text a consent UI renders",
            "description": "Built from the capability vocabulary, the event types and the "
            "retention settings, so it lists exactly what intake accepts.",
            "security": _KEY_SECURITY,
            "responses": {
                "200": {
                    "description": "The notice for the key's environment",
                    **_json(
                        {
                            "type": "object",
                            "required": [
                                "environment",
                                "identity",
                                "collected",
                                "derived",
                                "retention",
                                "consent",
                                "erasure",
                            ],
                            "properties": {
                                "environment": {"type": "string"},
                                "identity": {"type": "object"},
                                "collected": {
                                    "type": "object",
                                    "properties": {
                                        "probe": {"type": "array", "items": {"type": "object"}},
                                        "events": {"type": "array", "items": {"type": "object"}},
                                    },
                                },
                                "derived": {"type": "array", "items": {"type": "object"}},
                                "retention": {"type": "array", "items": {"type": "object"}},
                                "consent": {"type": "object"},
                                "erasure": {"type": "string"},
                            },
                        },
                        examples.privacy_notice_example(),
                    ),
                },
                **_errors(401, 405, 429),
            },
        }
    },
    "/api/v1/privacy/erase": {
        "post": {
            "operationId": "privacy_erase",
            "tags": ["client"],
            "summary": "Erase what the key's environment stored about one client (server keys)",
            "description": "The client id travels in the body, never in a URL (so never in an "
            "access log). All or nothing: when a store holding the client's data cannot be "
            "reached the answer is 503 and nothing was erased. The audit entry records that "
            "an erasure happened, not whom it was for.",
            "security": _KEY_SECURITY,
            "requestBody": _json(
                {
                    "type": "object",
                    "required": ["clientId"],
                    "additionalProperties": False,
                    "properties": {
                        "clientId": {"type": "string", "minLength": 1, "maxLength": 512}
                    },
                },
                examples.ERASE_REQUEST,
            ),
            "responses": {
                "200": _erased(),
                **_errors(
                    400,
                    401,
                    403,
                    405,
                    411,
                    413,
                    429,
                    503,
                    _400={
                        "errorCode": "INVALID_REQUEST",
                        "errorDetails": "clientId: required, a non-empty string",
                    },
                    _503={
                        "errorCode": "GENERAL",
                        "errorDetails": "cache: unreachable (ConnectionError); nothing was "
                        "erased, send the request again later",
                    },
                ),
            },
        }
    },
    "/api/v1/snapshot": {
        "get": {
            "operationId": "snapshot",
            "tags": ["client"],
            "summary": "The compiled ruleset for local evaluation (server keys only)",
            "description": "Follow changes on the change stream's /stream/v1/snapshot "
            "(`refetchSnapshot` events); send the event's etag back as flagConfigEtag.",
            "security": _KEY_SECURITY,
            "parameters": _STREAM_PARAMETERS[:1],
            "responses": {
                "200": {
                    "description": "Snapshot document (schema 1)",
                    **_json({"type": "object"}, examples.SNAPSHOT),
                },
                **_errors(304, 400, 401, 403, 405, 429, 503),
            },
        }
    },
}


# The management API's error bodies (DRF with api.errors.exception_handler): a field error is
# {"<field>": ["message", …]}, anything else {"detail": "…"}.
_MANAGEMENT_ERROR = {
    "type": "object",
    "description": 'Field errors: {"<field>": ["message"]}; others: {"detail": "message"}',
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
_MANAGEMENT_ERRORS = {
    "400": "Invalid input: the body names each field at fault (unknown fields included)",
    "401": "No valid management token or admin session",
    "403": "The user's role does not allow this change",
    "404": "No such flag, environment, rollout or segment",
    "405": "Method not allowed",
    "409": "The rollout's state does not allow this action",
    "411": "A body sent without Content-Length (chunked) is refused",
}
_WRITES = {"post", "put", "patch"}


def _add_management_errors(paths: dict[str, Any]) -> None:
    for path, operations in paths.items():
        if path in CLIENT_PATHS:
            continue
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code, description in _MANAGEMENT_ERRORS.items():
                if code in ("400", "409", "411") and method not in _WRITES:
                    continue
                body: dict[str, Any] = {"$ref": "#/components/schemas/ManagementError"}
                if code == "404":
                    # A path no route matches (a line break in a key) is answered by
                    # handler404, with the client API's body.
                    body = {"oneOf": [body, {"$ref": "#/components/schemas/ClientError"}]}
                operation["responses"].setdefault(
                    code,
                    {
                        "description": description,
                        **_json(body, examples.MANAGEMENT_ERRORS[code]),
                    },
                )


def add_client_paths(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: merge the client API into the schema, and add the
    management API's error responses (introspection documents only its successes)."""
    paths = result.setdefault("paths", {})
    paths.update(CLIENT_PATHS)
    _add_management_errors(paths)
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(
        {
            "Decision": _DECISION,
            "EdgeDecision": _EDGE_DECISION,
            "EvaluationFailure": _EVALUATION_FAILURE,
            "EventStream": _EVENT_STREAM,
            "ClientError": _ERROR,
            "ManagementError": _MANAGEMENT_ERROR,
        }
    )
    components.setdefault("securitySchemes", {}).update(
        {
            "BearerAuth": {"type": "http", "scheme": "bearer"},
            "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    )
    return result
