"""The OFREP response schemas, from the protocol's OpenAPI document.

Transcribed from open-feature/protocol `service/openapi.yaml` (commit 05d5b22c, OpenAPI 3.1,
so JSON Schema 2020-12), `components.schemas`, with the `$ref`s resolved. One change, on
purpose: the typed-value choice of `evaluationSuccess` is `anyOf` where the document says
`oneOf`, because an integer value is both an `integerFlag` and a `floatFlag` (every integer
is a number), so with `oneOf` no integer flag could ever validate.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

_KEY = {"type": "string"}
_ERROR_DETAILS = {"type": "string"}
_EVALUATION_SUCCESS: dict[str, Any] = {
    "allOf": [
        {
            "properties": {
                "key": _KEY,
                "reason": {"type": "string"},
                "variant": {"type": "string"},
                "metadata": {
                    "type": "object",
                    "additionalProperties": {
                        "oneOf": [{"type": "boolean"}, {"type": "string"}, {"type": "number"}]
                    },
                },
            }
        },
        {
            "anyOf": [
                {"properties": {"value": {"type": kind}}, "required": ["value"]}
                for kind in ("boolean", "string", "integer", "number", "object")
            ]
        },
    ]
}
_EVALUATION_FAILURE: dict[str, Any] = {
    "properties": {
        "key": _KEY,
        "errorCode": {
            "type": "string",
            "enum": ["PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL"],
        },
        "errorDetails": _ERROR_DETAILS,
    },
    "required": ["key", "errorCode"],
}
# ADR 0008 (open-feature/protocol service/adrs/0008-sse-for-bulk-evaluation-changes.md, its
# "OpenAPI Schema Additions"): the eventStream component, `required` and all.
_EVENT_STREAM: dict[str, Any] = {
    "type": "object",
    "required": ["type", "url"],
    "properties": {
        "type": {"type": "string"},
        "url": {"type": "string", "format": "uri"},
        "inactivityDelaySec": {"type": "integer", "minimum": 1},
    },
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "serverEvaluationSuccess": {
        "allOf": [_EVALUATION_SUCCESS, {"properties": {"cacheable": {"type": "boolean"}}}]
    },
    "evaluationFailure": _EVALUATION_FAILURE,
    "flagNotFound": {
        "properties": {
            "key": _KEY,
            "errorCode": {"type": "string", "enum": ["FLAG_NOT_FOUND"]},
            "errorDetails": _ERROR_DETAILS,
        },
        "required": ["key", "errorCode"],
    },
    "bulkEvaluationSuccess": {
        "type": "object",
        "required": ["flags"],
        "properties": {
            "flags": {
                "type": "array",
                "items": {"oneOf": [_EVALUATION_SUCCESS, _EVALUATION_FAILURE]},
            },
            "eventStreams": {"type": "array", "items": _EVENT_STREAM},
        },
    },
    "bulkEvaluationFailure": {
        "properties": {"errorCode": {"type": "string"}, "errorDetails": {"type": "string"}},
        "required": ["errorCode"],
    },
    "generalErrorResponse": {"properties": {"errorDetails": _ERROR_DETAILS}},
    "configurationResponse": {
        "properties": {
            "name": {"type": "string"},
            "capabilities": {
                "type": "object",
                "properties": {
                    "cacheInvalidation": {
                        "type": "object",
                        "properties": {
                            "polling": {
                                "type": "object",
                                "properties": {
                                    "enabled": {"type": "boolean"},
                                    "minPollingIntervalMs": {"type": "number"},
                                },
                            }
                        },
                    },
                    "flagEvaluation": {
                        "type": "object",
                        "properties": {
                            "supportedTypes": {
                                "type": "array",
                                "items": {
                                    "type": "string",
                                    "enum": ["int", "float", "string", "boolean", "object"],
                                },
                            }
                        },
                    },
                },
            },
        }
    },
}

# The schema of each documented (endpoint, status) answer.
RESPONSES: dict[tuple[str, int], str] = {
    ("single", 200): "serverEvaluationSuccess",
    ("single", 400): "evaluationFailure",
    ("single", 404): "flagNotFound",
    ("single", 500): "generalErrorResponse",
    ("bulk", 200): "bulkEvaluationSuccess",
    ("bulk", 400): "bulkEvaluationFailure",
    ("bulk", 500): "generalErrorResponse",
    ("configuration", 200): "configurationResponse",
}


def problems(endpoint: str, status: int, body: Any) -> list[str]:
    """What is wrong with an answer by the protocol's schema (empty: it conforms; statuses
    the protocol gives no body schema are not checked)."""
    name = RESPONSES.get((endpoint, status))
    if name is None:
        return []
    validator = Draft202012Validator(SCHEMAS[name])
    return [f"{name}: {e.message} at {list(e.path)}" for e in validator.iter_errors(body)]
