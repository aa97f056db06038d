"""Client telemetry intake: a batch of events, acknowledged once it is durable in the buffer."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from api.client import authenticate, held_snapshot, json_api
from api.http import ApiError, json_response, read_json_body
from capability_probe.services import client_hash
from rollout.telemetry.buffer import BufferUnavailable, environment_id, telemetry_append
from rollout.telemetry.schema import EventsInvalid, parse_batch

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 5


def _unavailable(what: str) -> ApiError:
    return ApiError(
        503,
        "GENERAL",
        f"buffer: {what}; nothing was stored, send the batch again later",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


@json_api
@require_POST
def events_view(request: HttpRequest) -> HttpResponse:
    """POST /api/v1/events (client key): buffer a batch; 202 with accepted and duplicates.

    The whole batch is refused (400 naming `events[i].field`) when any event is invalid.
    """
    held = held_snapshot(authenticate(request))
    now = time.time()
    try:
        body = read_json_body(request, limit=settings.EDGEFLAGS_EVENTS_MAX_BODY_BYTES)
        batch = parse_batch(body, flags=held.snapshot.flags, now=now)
    except EventsInvalid as exc:
        raise ApiError(400, "INVALID_EVENT", str(exc)) from exc
    try:
        environment = environment_id(held)
        if environment is None:
            raise _unavailable("this environment no longer exists")
        outcome = telemetry_append(
            environment_id=environment,
            client=client_hash(batch.targeting_key),
            batch=batch,
            received_at=now,
        )
    except BufferUnavailable as exc:
        logger.warning("telemetry batch refused, buffer unavailable: %s", exc)
        raise _unavailable("telemetry storage is unavailable") from exc
    return json_response(
        {"accepted": outcome.accepted, "duplicates": outcome.duplicates}, status=202
    )
