"""Client telemetry intake: a batch of events, acknowledged once it is durable in the buffer."""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from access.client_trust import token_verifier
from api.client import authenticate, held_snapshot, json_api, limit_client
from api.http import ApiError, json_response, read_json_body
from api.privacy import erase_for_key
from api.rate_limits import client_address
from capability_probe.schema import DENIED, GRANTED
from capability_probe.services import client_hash
from ops import metrics
from ops.outage import Outage
from rollout.audit import Actor
from rollout.snapshots.store import HeldSnapshot, KeyInfo
from telemetry.buffer import BufferUnavailable, telemetry_append
from telemetry.identities import identity_admit
from telemetry.schema import EventBatch, EventsInvalid, parse_batch

logger = logging.getLogger(__name__)

UNSIGNED = "unsigned identity: this environment counts only signed identities (identityHash)"
OVER_CAP = "identity cap: too many new clients from this address or key this hour"
# Logged once per outage, not per refused batch (every client retries).
_buffer_outage = Outage(logger, "telemetry buffer")


def _unavailable(what: str) -> ApiError:
    return ApiError(
        503,
        "GENERAL",
        f"buffer: {what}; nothing was stored, send the batch again later",
    )


@json_api("POST")
def events_view(request: HttpRequest) -> HttpResponse:
    """POST /api/v1/events (client key): buffer a batch; 202 with accepted, duplicates and
    uncounted (with uncountedReason).

    The whole batch is refused (400 naming `events[i].field`) when any event is invalid,
    including an event without a valid `decisionToken` or whose `segment` / `arm` differs
    from its token's. Events are counted in the token's segment and arm. Events of an
    unsigned identity where signed ones are required, and of identities over the hourly caps,
    are accepted but not counted (a resend would not change that).
    """
    info = authenticate(request)
    held = held_snapshot(info)
    now = time.time()
    try:
        body = read_json_body(request, limit=settings.EDGEFLAGS_EVENTS_MAX_BODY_BYTES)
        batch = parse_batch(
            body,
            flags=held.snapshot.flags,
            segments=held.snapshot.segment_identities,
            tokens=lambda targeting_key: token_verifier(
                environment_id=info.environment_id, targeting_key=targeting_key, now=now
            ),
            now=now,
        )
    except EventsInvalid as exc:
        raise ApiError(400, "INVALID_EVENT", str(exc)) from exc
    limit_client(request, info, batch.targeting_key)
    trusted = not info.require_signed_identities or all(batch.signed)
    if batch.consent != GRANTED:
        return _without_consent(info, held, batch, trusted)
    client = client_hash(batch.targeting_key)
    counted, reason = batch, ""
    if info.require_signed_identities and not all(batch.signed):
        counted, reason = batch.only(batch.signed), UNSIGNED
    try:
        if counted.events and not identity_admit(
            environment_id=info.environment_id,
            key_id=info.key_id,
            address=client_address(request),
            client=client,
        ):
            counted, reason = EventBatch(batch.targeting_key, (), ()), OVER_CAP
        outcome = telemetry_append(
            environment_id=held.environment_id, client=client, batch=counted, received_at=now
        )
    except (BufferUnavailable, redis.RedisError) as exc:
        _buffer_outage.failed(exc, consequence="event batches refused with 503 and Retry-After")
        metrics.events.labels("refused").inc(len(batch.events))
        raise _unavailable("telemetry storage is unavailable") from exc
    _buffer_outage.recovered()
    metrics.events.labels("accepted").inc(outcome.accepted)
    metrics.events.labels("duplicate").inc(outcome.duplicates)
    metrics.events.labels("uncounted").inc(len(batch.events) - len(counted.events))
    answer: dict[str, object] = {
        "accepted": outcome.accepted,
        "duplicates": outcome.duplicates,
        "uncounted": len(batch.events) - len(counted.events),
    }
    if reason:
        answer["uncountedReason"] = reason
    return json_response(answer, status=202)


def _without_consent(
    info: KeyInfo, held: HeldSnapshot, batch: EventBatch, trusted: bool
) -> HttpResponse:
    """Consent pending or denied: nothing of the batch is stored or counted; denied also
    forgets what the environment holds about the client (for an identity it trusts, as a
    probe saying denied does)."""
    if batch.consent == DENIED and trusted:
        erase_for_key(
            info,
            held,
            batch.targeting_key,
            actor=Actor(f"client key {info.key_id}"),
            reason="consent denied",
            audit_nothing=False,
        )
    metrics.events.labels("uncounted").inc(len(batch.events))
    answer = {
        "accepted": 0,
        "duplicates": 0,
        "uncounted": len(batch.events),
        "uncountedReason": f"consent {batch.consent}: nothing was stored",
    }
    return json_response(answer, status=202)
