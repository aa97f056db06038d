"""The client API's hot path: evaluate, OFREP, and the snapshot download.

Each request: one in-memory key lookup, the held snapshot, the pure engine, orjson. No
database query (the snapshot store pays for at most one version check per interval).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import orjson
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from access.client_trust import identity_counts, token_issuer
from access.decision_tokens import NO_ARM, TokenIssuer
from api.cors import origin_refusal
from api.http import (
    ApiError,
    cached_json_response,
    etag_of,
    json_response,
    read_json_body,
)
from api.rate_limits import client_address, limits_from_settings
from api.stream.etags import version_of
from capability_probe import vocabulary
from capability_probe.services import profile_attributes
from ops.outage import Outage
from ops.request_log import route_label
from rollout.engine.evaluate import evaluate, evaluate_all
from rollout.engine.types import INVALID_CONTEXT, TARGETING_KEY_MISSING, Decision
from rollout.snapshots.store import HeldSnapshot, KeyInfo, store
from telemetry.buffer import BufferUnavailable
from telemetry.exposure import exposures_count_decisions

logger = logging.getLogger(__name__)
# The client API's reads of stored profiles and environment ids, logged once per outage.
database_outage = Outage(logger, "database (client API)")

MAX_CONTEXT_ATTRIBUTES = 200
MAX_ATTRIBUTE_NAME = 200
MAX_FLAGS_PER_REQUEST = 500

rate_limits = limits_from_settings()


def _presented_key(request: HttpRequest) -> str:
    authorization = str(request.META.get("HTTP_AUTHORIZATION", ""))
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return str(request.META.get("HTTP_X_API_KEY", "")).strip()


def authenticate(request: HttpRequest, *, server_only: bool = False) -> KeyInfo:
    """The caller's key: 401 when missing, unknown or revoked; 403 out of scope; 429 over rate."""
    raw_key = _presented_key(request)
    if not raw_key:
        raise ApiError(
            401,
            "UNAUTHORIZED",
            "Authorization: missing API key (send 'Authorization: Bearer <key>' or 'X-API-Key')",
        )
    address = client_address(request)
    _raise_if_limited(rate_limits.check_guessing(address))
    info = store.key(raw_key)
    if info is None:
        rate_limits.unknown_key(address)
        raise ApiError(401, "UNAUTHORIZED", "Authorization: unknown API key")
    if info.revoked:
        raise ApiError(401, "UNAUTHORIZED", "Authorization: this API key has been revoked")
    if server_only and info.scope != "server":
        raise ApiError(403, "FORBIDDEN", "Authorization: this endpoint needs a server key")
    refusal = origin_refusal(request, info.allowed_origins)
    if refusal is not None:
        raise ApiError(403, "FORBIDDEN", refusal)
    _raise_if_limited(rate_limits.check_caller(info.key_id, address))
    return info


_LIMIT_FIELDS = {
    "key": ("Authorization", "EDGEFLAGS_RATE_LIMIT_PER_KEY", "this key"),
    "address": ("Authorization", "EDGEFLAGS_RATE_LIMIT_PER_ADDRESS", "this key from your address"),
    "client": ("context.targetingKey", "EDGEFLAGS_RATE_LIMIT_PER_CLIENT", "this client"),
    "unknown_keys": (
        "Authorization",
        "EDGEFLAGS_RATE_LIMIT_UNKNOWN_KEYS_PER_ADDRESS",
        "unknown API keys from your address",
    ),
}


def _raise_if_limited(refused: tuple[str, int] | None) -> None:
    if refused is None:
        return
    what, wait = refused
    field, setting, whom = _LIMIT_FIELDS[what]
    raise ApiError(
        429,
        "RATE_LIMITED",
        f"{field}: more than {getattr(settings, setting):g} requests/s for {whom}",
        headers={"Retry-After": str(wait)},
    )


def limit_client(request: HttpRequest, info: KeyInfo, targeting_key: Any) -> None:
    """429 when this client (key, address, targeting key) sends more than its share."""
    _raise_if_limited(rate_limits.check_client(info.key_id, client_address(request), targeting_key))


def held_snapshot(info: KeyInfo, request: HttpRequest | None = None) -> HeldSnapshot:
    """The key's environment's snapshot; 503 when none has been published yet.

    A refetch the change stream triggered names the version it was told of
    (`flagConfigEtag`, or `sseEtag` as the ADR's first draft called it): this process may
    not have checked for it yet, so it checks at once rather than answer from the version
    before (which the client would take as "nothing changed").
    """
    wanted = _stream_version(request) if request is not None else None
    if wanted is None:
        held = store.snapshot(info.environment)
    else:
        held = store.snapshot_at_least(info.environment, wanted)
    if held is None:
        raise ApiError(503, "GENERAL", "snapshot: no ruleset published for this environment yet")
    return held


STREAM_ETAG_PARAMETERS = ("flagConfigEtag", "sseEtag")


def _stream_version(request: HttpRequest) -> int | None:
    """The version a change-stream refetch names; 400 for an etag that is not ours."""
    if not request.META.get("QUERY_STRING"):
        return None  # the common case: no query string to parse
    for name in STREAM_ETAG_PARAMETERS:
        value = request.GET.get(name)
        if value is not None:
            version = version_of(value[:40])
            if version is None:
                raise ApiError(
                    400, "INVALID_CONTEXT", f"{name}: not an etag of an Edgeflags change event"
                )
            return version
    return None


def event_streams(raw_key: str, scope: str) -> list[dict[str, Any]]:
    """OFREP's `eventStreams` for this key: the change stream (api/stream), or nothing when
    EDGEFLAGS_STREAM_URL is empty. A client key goes into the URL, since EventSource cannot
    send headers (client keys are public); a server key never does: its SDK sends the header."""
    return _event_streams(
        settings.EDGEFLAGS_STREAM_URL, settings.EDGEFLAGS_STREAM_INACTIVITY_S, raw_key, scope
    )


@lru_cache(maxsize=4096)  # the answer depends only on these, and every bulk response has it
def _event_streams(base: str, inactivity_s: int, raw_key: str, scope: str) -> list[dict[str, Any]]:
    if not base:
        return []
    url = f"{base}/stream/v1/flags"
    if scope == "client":
        url += f"?key={quote(raw_key, safe='')}"
    return [{"type": "sse", "url": url, "inactivityDelaySec": inactivity_s}]


def with_event_streams(body: dict[str, Any], request: HttpRequest, info: KeyInfo) -> dict[str, Any]:
    """`body` with the change stream advertised: `eventStreams` (OFREP's name, which the
    OpenFeature providers read) and `refreshConnections` (the ADR's first draft's name, for
    clients written to it)."""
    streams = event_streams(_presented_key(request), info.scope)
    if streams:
        body["eventStreams"] = streams
        body["refreshConnections"] = streams
    return body


def parse_context(value: Any) -> dict[str, Any]:
    """The OFREP evaluation context: a flat JSON object; `targetingKey` must be a string."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, "INVALID_CONTEXT", "context: must be a JSON object")
    if len(value) > MAX_CONTEXT_ATTRIBUTES:
        raise ApiError(
            400, "INVALID_CONTEXT", f"context: more than {MAX_CONTEXT_ATTRIBUTES} attributes"
        )
    for name in value:
        if len(name) > MAX_ATTRIBUTE_NAME:
            raise ApiError(
                400, "INVALID_CONTEXT", f"context.{name[:40]}…: name over {MAX_ATTRIBUTE_NAME}"
            )
    targeting_key = value.get("targetingKey")
    if targeting_key is not None and not isinstance(targeting_key, str):
        raise ApiError(400, "INVALID_CONTEXT", "context.targetingKey: must be a string")
    return value


# A context carrying any of these brings its capability inline; otherwise the client's
# stored profile (from its last probe) is used. These are the engine's profiling signals
# less the runtime hints: saveData, like every attribute, is passed on to the engine, but a
# context of hints alone still gets the stored profile, with its hints applied over it.
INLINE_CAPABILITY = vocabulary.INLINE_CAPABILITY
SETTLED_RUNGS = vocabulary.SETTLED_RUNGS


def with_stored_profile(context: dict[str, Any], held: HeldSnapshot) -> dict[str, Any]:
    """The context, completed with the client's stored profile when it brings none inline
    (runtime hints such as saveData do not count as capability; they override the stored
    profile's).

    Only the profile the caller's environment stored is read: from the cache (Redis), and
    from the database only on a miss. The environment's id comes with the held snapshot.
    """
    if held.snapshot.capability is None or not INLINE_CAPABILITY.isdisjoint(context):
        return context
    client_id = context.get("clientId") or context.get("targetingKey")
    if not isinstance(client_id, str) or not client_id:
        return context
    try:
        stored = profile_attributes(environment_id=held.environment_id, client_id=client_id)
    except (BufferUnavailable, DatabaseError) as exc:
        # Database away: the inline context decides (a safe rung at worst).
        database_outage.failed(exc, consequence="decisions use the inline context only")
        return context
    database_outage.recovered()
    return {**stored, **context} if stored else context


def _reject_unknown_fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, "INVALID_CONTEXT", f"{unknown[0]}: unknown field")


def _flag_keys(value: Any, held: HeldSnapshot) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ApiError(400, "INVALID_CONTEXT", "flags: must be a list of flag keys")
    if len(value) > MAX_FLAGS_PER_REQUEST:
        raise ApiError(400, "INVALID_CONTEXT", f"flags: more than {MAX_FLAGS_PER_REQUEST} keys")
    for index, key in enumerate(value):
        if not isinstance(key, str):
            raise ApiError(400, "INVALID_CONTEXT", f"flags[{index}]: must be a string")
    unknown = [key for key in value if key not in held.snapshot.flags]
    if unknown:
        raise ApiError(400, "FLAG_NOT_FOUND", f"flags: unknown flag key(s): {', '.join(unknown)}")
    return value


def _metadata(decision: Decision, held: HeldSnapshot, tokens: TokenIssuer | None) -> dict[str, Any]:
    # Only what this answer depends on: a publish that changes no flag's answer (a new API
    # key, another flag) must leave it, and the bulk ETag, as they were.
    metadata: dict[str, Any] = {"enabled": decision.enabled}
    metadata.update(decision.metadata)
    if tokens is not None:
        segment, arm, rung = metadata.get("segment"), metadata.get("arm"), metadata.get("rung")
        identity = held.snapshot.segment_identities.get(segment) if segment is not None else None
        if identity is not None and (arm is not None or rung is not None):
            # What the client's events echo: the server's record of the segment, arm, rung
            # and model version it served (an edge feature's outside a rollout arm too, for
            # its per-rung and per-version metrics).
            model = decision.model.nested["version"] if decision.model is not None else ""
            metadata["decisionToken"] = tokens.issue(
                decision.flag_key, identity, arm or NO_ARM, rung or "", model
            )
    return metadata


def decision_body(
    decision: Decision,
    held: HeldSnapshot,
    *,
    extended: bool = False,
    tokens: TokenIssuer | None = None,
) -> dict[str, Any]:
    """One decision in OFREP's evaluationSuccess / evaluationFailure shape.

    `extended` (the Edgeflags API) adds an edge feature's UI state and unmet requirements,
    which OFREP's primitive-only metadata cannot carry. With `tokens` (the request's issuer,
    `access.client_trust.token_issuer`), a decision under a rollout plan carries its
    `decisionToken`.
    """
    body: dict[str, Any] = {
        "key": decision.flag_key,
        "value": decision.value,
        "variant": decision.variant,
        "reason": decision.reason,
        "metadata": _metadata(decision, held, tokens),
    }
    model = decision.model
    if model is not None:
        # The on-device rung's model version (rollout/engine/edge_models.py): an object where
        # the API allows one, OFREP's primitives (modelName, modelVersion, …) elsewhere.
        if extended:
            body["metadata"]["model"] = model.nested
        else:
            body["metadata"].update(model.flat)
    if decision.error_code:
        body["errorCode"] = decision.error_code
        body["errorDetails"] = decision.error_message or decision.error_code
    if extended and decision.ui_state is not None:
        body["uiState"] = decision.ui_state
        body["unmet"] = {key: list(reasons) for key, reasons in (decision.unmet or {}).items()}
        offline = decision.offline
        if offline is not None:
            # What edgeflags.js shows the moment the browser goes offline, without asking.
            body["offline"] = {
                "value": offline.value,
                "variant": offline.variant,
                "uiState": offline.ui_state,
            }
    return body


# Decision errors that are the request's fault: the single-flag endpoint answers them 400.
REQUEST_ERRORS = frozenset({TARGETING_KEY_MISSING, INVALID_CONTEXT})


def json_api(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A client endpoint taking `methods`: ApiError answered as its JSON body, a wrong method
    as a JSON 405 with Allow, and an unexpected exception logged once with its traceback and
    answered with a generic 500 (never the exception's text). No CSRF token (API keys)."""
    allowed = ", ".join(methods)

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise ApiError(
                        405,
                        "METHOD_NOT_ALLOWED",
                        f"method: {request.method} not allowed (use {allowed})",
                        headers={"Allow": allowed},
                    )
                return view(request, *args, **kwargs)
            except ApiError as error:
                if error.key is None and "key" in kwargs:
                    error.key = kwargs["key"]  # OFREP: every single-flag error names its flag
                return error.response()
            except Exception:
                logger.exception("%s %s failed", request.method, route_label(request))
                failure = {
                    "errorCode": "GENERAL",
                    "errorDetails": "internal error (logged on the server)",
                }
                if "key" in kwargs:
                    failure = {"key": kwargs["key"], **failure}
                response = json_response(failure, status=500)
                response._has_been_logged = True  # type: ignore[attr-defined]
                return response

        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        return csrf_exempt(wrapped)

    return decorate


@dataclass(frozen=True, slots=True)
class _Evaluation:
    info: KeyInfo
    held: HeldSnapshot
    body: dict[str, Any]
    context: dict[str, Any]
    tokens: TokenIssuer | None
    counts: bool  # whether this client's exposures count in the guardrails


def _evaluation_request(request: HttpRequest, allowed_fields: set[str]) -> _Evaluation:
    """The steps every evaluation endpoint shares: key, limits, snapshot, body, context, and
    the request's decision-token issuer (one per request, not per flag)."""
    info = authenticate(request)
    held = held_snapshot(info, request)
    body = read_json_body(request)
    _reject_unknown_fields(body, allowed_fields)
    context = parse_context(body.get("context"))
    # The settled rungs are the server's record of this client's probes: never a claim.
    context.pop(SETTLED_RUNGS, None)
    limit_client(request, info, context.get("targetingKey"))
    tokens = token_issuer(info, context)
    counts = identity_counts(info, tokens is not None and tokens.signed)
    # Where signed identities are required, only a signed one may use the profile stored
    # under its targeting key (as only a signed one may write it).
    completed = with_stored_profile(context, held) if counts else context
    return _Evaluation(info, held, body, completed, tokens, counts)


@json_api("POST")
def evaluate_view(request: HttpRequest) -> HttpResponse:
    """POST /api/v1/evaluate: every (or the listed) flag's decision for one context."""
    ask = _evaluation_request(request, {"context", "flags"})
    held = ask.held
    keys = _flag_keys(ask.body.get("flags"), held)
    decisions = evaluate_all(held.snapshot, ask.context, keys, strict=True)
    if ask.counts:
        exposures_count_decisions(held.snapshot, decisions)
    flags = {
        d.flag_key: decision_body(d, held, extended=True, tokens=ask.tokens) for d in decisions
    }
    payload = {"environment": held.environment, "snapshotVersion": held.version, "flags": flags}
    body_bytes = orjson.dumps(with_event_streams(payload, request, ask.info))
    return cached_json_response(request, body_bytes, etag_of(body_bytes))


@json_api("POST")
def ofrep_flag_view(request: HttpRequest, key: str) -> HttpResponse:
    """POST /ofrep/v1/evaluate/flags/{key}: one flag, OFREP single-evaluation contract."""
    ask = _evaluation_request(request, {"context"})
    held = ask.held
    if key not in held.snapshot.flags:
        raise ApiError(404, "FLAG_NOT_FOUND", f"flag {key!r} does not exist", key=key)
    decision = evaluate(held.snapshot, key, ask.context, strict=True)
    if decision.error_code in REQUEST_ERRORS:
        # OFREP's evaluationFailure: the request lacks what the flag needs.
        raise ApiError(400, decision.error_code, decision.error_message or "", key=key)
    if ask.counts:
        exposures_count_decisions(held.snapshot, (decision,))
    return json_response(decision_body(decision, held, tokens=ask.tokens))


def _failure_body(decision: Decision) -> dict[str, Any]:
    """A bulk item in OFREP's evaluationFailure shape: no value, so that it is not also an
    evaluationSuccess (the schema's oneOf); the provider serves the application's default."""
    return {
        "key": decision.flag_key,
        "errorCode": decision.error_code,
        "errorDetails": decision.error_message or decision.error_code,
    }


@json_api("POST")
def ofrep_bulk_view(request: HttpRequest) -> HttpResponse:
    """POST /ofrep/v1/evaluate/flags: every flag, with ETag / If-None-Match."""
    ask = _evaluation_request(request, {"context"})
    held = ask.held
    decisions = evaluate_all(held.snapshot, ask.context, None, strict=True)
    if ask.counts:
        exposures_count_decisions(held.snapshot, decisions)
    flags = [
        _failure_body(d) if d.error_code else decision_body(d, held, tokens=ask.tokens)
        for d in decisions
    ]
    body_bytes = orjson.dumps(with_event_streams({"flags": flags}, request, ask.info))
    return cached_json_response(request, body_bytes, etag_of(body_bytes))


@json_api("GET")
def ofrep_configuration_view(request: HttpRequest) -> HttpResponse:
    """GET /ofrep/v1/configuration: what providers may assume about this service."""
    authenticate(request)
    interval_ms = int(settings.EDGEFLAGS_SNAPSHOT_CHECK_INTERVAL_S * 1000)
    return json_response(
        {
            "name": "edgeflags",
            "capabilities": {
                "cacheInvalidation": {
                    "polling": {"enabled": True, "minPollingIntervalMs": max(1000, interval_ms)}
                },
                "flagEvaluation": {
                    "supportedTypes": ["boolean", "string", "int", "float", "object"]
                },
            },
        }
    )


@json_api("GET")
def snapshot_view(request: HttpRequest) -> HttpResponse:
    """GET /api/v1/snapshot (server keys): the compiled ruleset for local evaluation."""
    info = authenticate(request, server_only=True)
    held = held_snapshot(info, request)
    return cached_json_response(request, held.document_bytes, f'"{held.etag}"')
