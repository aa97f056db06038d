"""OpenAPI paths of the client endpoints, which are plain Django views (the hot path).

drf-spectacular documents the DRF management API by introspection; this hook adds the client
API (evaluate, OFREP, snapshot) from the contract written here.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from rollout.telemetry.schema import MAX_INFERENCE_MS, MAX_MILLIJOULES

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
_DECISION = {
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
            "description": "enabled (Unleash isEnabled), snapshotVersion, …",
            "additionalProperties": {
                "oneOf": [{"type": "boolean"}, {"type": "string"}, {"type": "number"}]
            },
        },
        "errorCode": {"type": "string"},
        "errorDetails": {"type": "string"},
    },
}
_CONTEXT = {
    "type": "object",
    "description": "Flat attributes; targetingKey is the user id used for sticky bucketing.",
    "properties": {"targetingKey": {"type": "string"}},
    "additionalProperties": True,
}

_EVENT_BATCH = {
    "type": "object",
    "required": ["targetingKey", "events"],
    "properties": {
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
                        "enum": ["exposure", "inference", "crash", "energy", "feedback"],
                    },
                    "flag": {"type": "string", "description": "A flag of the environment"},
                    "decisionToken": {
                        "type": "string",
                        "maxLength": 200,
                        "description": "The decision's metadata.decisionToken, echoed: the "
                        "server counts the event in the segment and arm it records",
                    },
                    "segment": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 63,
                        "description": "Optional; must equal the token's segment",
                    },
                    "arm": {
                        "type": "string",
                        "enum": ["treatment", "control"],
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
                },
                "additionalProperties": False,
            },
        },
    },
}


def _errors(*codes: int) -> dict[str, Any]:
    described = {
        304: "Not modified (If-None-Match matched the ETag)",
        400: "Bad request: errorDetails names the field",
        401: "Missing, unknown or revoked API key",
        403: "The key's scope does not allow this endpoint",
        404: "Flag not found",
        413: "Body over 64 KiB",
        429: "Rate limited; Retry-After gives seconds",
        503: "Not stored (buffer unavailable); send again after Retry-After seconds",
    }
    responses: dict[str, Any] = {}
    for code in codes:
        response: dict[str, Any] = {"description": described[code]}
        if code != 304:
            response["content"] = {
                "application/json": {"schema": {"$ref": "#/components/schemas/ClientError"}}
            }
        responses[str(code)] = response
    return responses


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


CLIENT_PATHS: dict[str, Any] = {
    "/api/v1/evaluate": {
        "post": {
            "operationId": "evaluate",
            "tags": ["client"],
            "summary": "Decisions for one client (all flags, or the listed ones)",
            "security": _KEY_SECURITY,
            "requestBody": _json(
                {
                    "type": "object",
                    "properties": {
                        "context": _CONTEXT,
                        "flags": {"type": "array", "items": {"type": "string"}},
                    },
                }
            ),
            "responses": {
                "200": {
                    "description": "Decisions, with an ETag over the body",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "environment": {"type": "string"},
                                "snapshotVersion": {"type": "integer"},
                                "flags": {
                                    "type": "object",
                                    "additionalProperties": {
                                        "$ref": "#/components/schemas/Decision"
                                    },
                                },
                            },
                        }
                    ),
                },
                **_errors(304, 400, 401, 413, 429),
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
            "requestBody": _json({"type": "object", "properties": {"context": _CONTEXT}}),
            "responses": {
                "200": {
                    "description": "The decision",
                    **_json({"$ref": "#/components/schemas/Decision"}),
                },
                **_errors(400, 401, 404, 413, 429),
            },
        }
    },
    "/ofrep/v1/evaluate/flags": {
        "post": {
            "operationId": "ofrep_evaluate_flags",
            "tags": ["OFREP"],
            "summary": "OFREP bulk evaluation (ETag / If-None-Match)",
            "security": _KEY_SECURITY,
            "requestBody": _json({"type": "object", "properties": {"context": _CONTEXT}}),
            "responses": {
                "200": {
                    "description": "Every flag's decision",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "flags": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Decision"},
                                }
                            },
                        }
                    ),
                },
                **_errors(304, 400, 401, 413, 429),
            },
        }
    },
    "/api/v1/events": {
        "post": {
            "operationId": "events",
            "tags": ["client"],
            "summary": "A client's telemetry batch (exposures and outcomes), all or nothing",
            "security": _KEY_SECURITY,
            "requestBody": _json(_EVENT_BATCH),
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
                        }
                    ),
                },
                **_errors(400, 401, 413, 429, 503),
            },
        }
    },
    "/api/v1/snapshot": {
        "get": {
            "operationId": "snapshot",
            "tags": ["client"],
            "summary": "The compiled ruleset for local evaluation (server keys only)",
            "security": _KEY_SECURITY,
            "responses": {
                "200": {"description": "Snapshot document (schema 1)", **_json({"type": "object"})},
                **_errors(304, 401, 403, 429),
            },
        }
    },
}


def add_client_paths(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: merge the client API into the schema."""
    result.setdefault("paths", {}).update(CLIENT_PATHS)
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update({"Decision": _DECISION, "ClientError": _ERROR})
    components.setdefault("securitySchemes", {}).update(
        {
            "BearerAuth": {"type": "http", "scheme": "bearer"},
            "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    )
    return result
