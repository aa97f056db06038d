"""Privacy: the notice a consent UI renders, and erasure by a server key.

The raw client id travels only in the request body (never in a URL, so never in an access
log line or a route label), and the audit entry records that an erasure happened, not whom
it was for: after it, nothing derived from the client id remains in the audit log either.
"""

from __future__ import annotations

from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse

from api.client import authenticate, database_outage, held_snapshot, json_api
from api.http import ApiError, json_response, read_json_body
from api.privacy_notice import privacy_notice
from capability_probe.services import ErasureIncomplete, client_erase
from ops.json_input import JsonInputError, check_text
from rollout.audit import Actor, audit_record
from rollout.snapshots.store import HeldSnapshot, KeyInfo

ERASE_FIELDS = {"clientId"}
MAX_CLIENT_ID_LENGTH = 512


def _client_id(body: dict[str, object]) -> str:
    unknown = sorted(set(body) - ERASE_FIELDS)
    if unknown:
        raise ApiError(400, "INVALID_REQUEST", f"{unknown[0][:80]}: unknown field")
    client_id = body.get("clientId")
    if not isinstance(client_id, str) or not client_id:
        raise ApiError(400, "INVALID_REQUEST", "clientId: required, a non-empty string")
    if len(client_id) > MAX_CLIENT_ID_LENGTH:
        raise ApiError(
            400, "INVALID_REQUEST", f"clientId: at most {MAX_CLIENT_ID_LENGTH} characters"
        )
    try:
        check_text(client_id, field="clientId")
    except JsonInputError as exc:
        raise ApiError(400, "INVALID_REQUEST", str(exc)) from exc
    return client_id


def erase_for_key(
    info: KeyInfo,
    held: HeldSnapshot,
    client_id: str,
    *,
    actor: Actor,
    reason: str,
    audit_nothing: bool = True,
) -> bool:
    """Erase what the key's environment stored about a client, and audit it, in one
    transaction; True when there was something. 503 (nothing erased) when a store is away.

    The audit entry says an erasure happened, not whom it was for. `audit_nothing=False`
    records only erasures that removed something (consent withdrawn on every probe of a
    client must not fill the audit log)."""
    try:
        with transaction.atomic():
            erased = client_erase(environment_id=held.environment_id, client_id=client_id)
            if erased or audit_nothing:
                audit_record(
                    actor=actor,
                    action="client.erase",
                    environment=held.environment,
                    after={"erased": erased},
                    reason=reason,
                )
    except ErasureIncomplete as exc:
        raise ApiError(
            503, "GENERAL", f"{exc}; nothing was erased, send the request again later"
        ) from exc
    except DatabaseError as exc:
        database_outage.failed(exc, consequence="erasures answered 503")
        raise ApiError(503, "GENERAL", "database: unavailable, nothing was erased") from exc
    database_outage.recovered()
    return erased


@json_api("GET")
def privacy_notice_view(request: HttpRequest) -> HttpResponse:
    """GET /api/v1/privacy (any key): what is collected, why, where, for how long, and the
    consent states, for the key's environment."""
    info = authenticate(request)
    response = json_response(privacy_notice(info.environment))
    response["Cache-Control"] = "public, max-age=300"
    return response


@json_api("POST")
def privacy_erase_view(request: HttpRequest) -> HttpResponse:
    """POST /api/v1/privacy/erase (server key) with {"clientId": …}: erase what the key's
    environment stored about one client; 503 (nothing erased) when a store is away."""
    info = authenticate(request, server_only=True)
    held = held_snapshot(info)
    client_id = _client_id(read_json_body(request))
    erased = erase_for_key(
        info,
        held,
        client_id,
        actor=Actor(f"server key {info.key_id}"),
        reason="POST /api/v1/privacy/erase",
    )
    return json_response({"erased": erased})
