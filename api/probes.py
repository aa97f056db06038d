"""Capability probes: take one in, answer with the client's segment and every decision.

One round trip gets a client started: the probe is validated and stored (under a keyed
hash of the client id, in the key's environment), and the answer carries the segment and all
flag decisions. The answer is computed from this probe alone: it never carries a stored
profile, so a replayed probe id or someone else's client id reads nothing.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from access.client_trust import identity_counts, token_issuer
from api.client import (
    authenticate,
    database_outage,
    decision_body,
    held_snapshot,
    json_api,
    limit_client,
    with_event_streams,
)
from api.http import ApiError, json_response, read_json_body
from api.privacy import erase_for_key
from capability_probe.models import columns_to_attributes
from capability_probe.schema import DENIED, GRANTED, ProbeInvalid, parse_probe
from capability_probe.services import (
    probe_record,
    profile_attributes,
)
from capability_probe.vocabulary import SETTLED_RUNGS
from ops.json_input import JsonInputError, check_text
from rollout.audit import Actor
from rollout.engine.evaluate import evaluate_all, resolve_segment, settle_all
from rollout.snapshots.store import HeldSnapshot
from telemetry.buffer import BufferUnavailable
from telemetry.exposure import exposures_count_decisions


def _database_unavailable(exc: DatabaseError) -> ApiError:
    database_outage.failed(exc, consequence="probes and erasures answered 503")
    return ApiError(503, "GENERAL", "database: unavailable, nothing was stored")


def _stored_settled(held: HeldSnapshot, client_id: str) -> Any:
    """The settled rungs stored with the client's profile (None: no profile, or the
    database is away, and the probe settles afresh)."""
    try:
        stored = profile_attributes(environment_id=held.environment_id, client_id=client_id)
    except (BufferUnavailable, DatabaseError):
        return None
    return (stored or {}).get(SETTLED_RUNGS)


@json_api("POST")
def probe_create_view(request: HttpRequest) -> HttpResponse:
    """POST /api/v1/probes (client key): store a probe; answer segment and decisions."""
    info = authenticate(request)
    held = held_snapshot(info)
    try:
        probe = parse_probe(read_json_body(request))
    except ProbeInvalid as exc:
        raise ApiError(400, "INVALID_PROBE", str(exc)) from exc
    limit_client(request, info, probe.client_id)
    attributes = {"targetingKey": probe.client_id, **columns_to_attributes(probe.profile)}
    context: dict[str, Any] = {**attributes, **probe.runtime}
    segment = resolve_segment(held.snapshot, context)
    tokens = token_issuer(
        info, {"targetingKey": probe.client_id, "identityHash": probe.identity_hash}
    )
    # Where the environment requires signed identities, an unsigned client is answered but
    # leaves nothing behind: no stored profile, no exposures counted.
    counts = identity_counts(info, tokens is not None and tokens.signed)
    # Without granted consent nothing of the client is kept: no profile, no exposures.
    granted = probe.consent == GRANTED
    store = counts and granted
    # The rungs this client has settled on move only with its probes (no erratic rungs):
    # from the state stored with its profile, this probe's capability settles the new one.
    context[SETTLED_RUNGS] = settle_all(
        held.snapshot, context, _stored_settled(held, probe.client_id) if store else None
    )
    try:
        # Only an identity this environment trusts may make it forget (as it may store):
        # where signed identities are required, an unsigned "denied" erases nobody.
        if probe.consent == DENIED and counts:
            erase_for_key(
                info,
                held,
                probe.client_id,
                actor=Actor(f"client key {info.key_id}"),
                reason="consent denied",
                audit_nothing=False,
            )
        outcome = probe_record(
            probe=probe,
            environment_id=held.environment_id,
            segment_identity=held.snapshot.segment_identities.get(segment or ""),
            settled_rungs=context[SETTLED_RUNGS],
            store=counts,
        )
    except ProbeInvalid as exc:
        raise ApiError(400, "INVALID_PROBE", str(exc)) from exc
    except DatabaseError as exc:
        raise _database_unavailable(exc) from exc
    database_outage.recovered()
    decisions = evaluate_all(held.snapshot, context, strict=True)
    if store:
        exposures_count_decisions(held.snapshot, decisions)
    body = {
        "segment": {"key": segment, "label": held.snapshot.segment_labels.get(segment or "")},
        "consent": probe.consent,
        "stored": outcome.stored,
        "duplicate": outcome.duplicate,
        "profile": outcome.attributes,
        # With the change stream, so that edgeflags.js listens from its first answer on.
        "decisions": with_event_streams(
            {
                "environment": held.environment,
                "snapshotVersion": held.version,
                "flags": {
                    d.flag_key: decision_body(d, held, extended=True, tokens=tokens)
                    for d in decisions
                },
            },
            request,
            info,
        ),
    }
    return HttpResponse(orjson.dumps(body), content_type="application/json")


@json_api("DELETE")
def probe_erase_view(request: HttpRequest, client_id: str) -> HttpResponse:
    """DELETE /api/v1/probes/{clientId} (server key): erase what the key's environment stored
    about one client."""
    info = authenticate(request, server_only=True)
    held = held_snapshot(info)
    try:
        check_text(client_id, field="clientId")
    except JsonInputError as exc:
        raise ApiError(400, "INVALID_PROBE", str(exc)) from exc
    erased = erase_for_key(
        info,
        held,
        client_id,
        actor=Actor(f"server key {info.key_id}"),
        reason="DELETE /api/v1/probes",
    )
    return json_response({"erased": erased})
