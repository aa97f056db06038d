"""Retraining requests: filed by the drift controller or by a person, audited, and POSTed to
the team that retrains (EDGEFLAGS_RETRAIN_WEBHOOK_URL), signed, retried with backoff.

A request never changes what clients are served. Filing one writes the request, its audit
entry (with the evidence) and, when a webhook is configured, a WebhookDelivery row holding the
exact signed body, all in one transaction. Deliveries are sent after the commit by the worker
(`retrain_webhooks_send`, also run every minute by beat), never by the caller: a receiver that
is down or slow costs its own retries, never the drift controller's run.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ops.errors import DomainError, NotFound
from rollout.audit import Actor, audit_record
from rollout.models import Environment, FlagState, RetrainingRequest, WebhookDelivery
from rollout.roles import role_require
from rollout.selectors import segment_identity, segment_keys

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Edgeflags-Signature"
MAX_ERROR = 500


def signature(secret: str, body: bytes) -> str:
    """The header value: sha256=<hex HMAC-SHA256 of the raw body under the secret>."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _body(request: RetrainingRequest, environment: Environment) -> bytes:
    return orjson.dumps(
        {
            "type": "retraining.requested",
            "id": request.pk,
            "environment": environment.key,
            "flag": request.flag,
            "segment": request.segment_key,
            "segmentIdentity": request.segment_identity,
            "modelVersion": request.model_version or None,
            "metric": request.metric or None,
            "source": request.source,
            "reason": request.reason,
            "evidence": request.evidence,
            "filedBy": request.filed_by,
            "filedAt": request.filed_at.isoformat(),
        },
        option=orjson.OPT_SORT_KEYS,
    )


@transaction.atomic
def retrain_request_file(
    *,
    environment: Environment,
    flag: str,
    segment: int,
    reason: str,
    actor: Actor,
    model_version: str = "",
    metric: str = "",
    evidence: dict[str, Any] | None = None,
    now: datetime | None = None,
    source: str = RetrainingRequest.Source.DRIFT,
) -> RetrainingRequest:
    """File a retraining request (the drift controller's, or a person's through the command
    or the console), with its audit entry and, when configured, its webhook delivery."""
    role_require(actor, "add", "rollout.retrainingrequest")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("reason", "required: say why (it goes into the audit log)")
    now = now or timezone.now()
    key = segment_keys().get(segment, f"segment-{segment}")
    request = RetrainingRequest(
        environment=environment,
        flag=flag,
        segment_identity=segment,
        segment_key=key,
        model_version=model_version,
        metric=metric,
        source=source,
        reason=reason,
        evidence=evidence or {},
        filed_by=actor.name,
        filed_at=now,
    )
    request.full_clean()
    request.save()
    audit_record(
        actor=actor,
        action="model.retrain",
        environment=environment.key,
        flag=flag,
        segment=key,
        segment_identity=segment,
        after={"request": request.pk, "modelVersion": model_version or None, "metric": metric},
        reason=reason,
        evidence=evidence or {},
        at=now,
    )
    url = settings.EDGEFLAGS_RETRAIN_WEBHOOK_URL
    if url:
        WebhookDelivery.objects.create(
            request=request, url=url, body=_body(request, environment), next_attempt_at=now
        )
        transaction.on_commit(_send_soon)
    return request


def _send_soon() -> None:
    from rollout.tasks import send_retrain_webhooks

    try:
        send_retrain_webhooks.delay()
    except Exception:  # noqa: BLE001 - no broker: beat's minute sweep sends it
        logger.warning("retraining webhook: could not queue a send; the next sweep sends it")


def retrain_request_by_hand(
    *, flag: str, environment: str, segment: str, reason: str, actor: Actor
) -> RetrainingRequest:
    """A person's request for one segment: the version it is served is the one named."""
    state = (
        FlagState.objects.select_related("environment", "model_version", "rollout_plan")
        .filter(flag__key=flag, environment__key=environment)
        .first()
    )
    if state is None:
        raise NotFound("flag", f"no flag {flag!r} in environment {environment!r}")
    identity = segment_identity(segment)
    if identity is None:
        raise NotFound("segment", f"no segment {segment!r}")
    version = state.model_version.version if state.model_version else ""
    return retrain_request_file(
        environment=state.environment,
        flag=flag,
        segment=identity,
        reason=reason,
        actor=actor,
        model_version=version,
        evidence={"segment": segment, "modelVersion": version or None},
        source=RetrainingRequest.Source.PERSON,
    )


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: doubling from the first delay."""
    return timedelta(seconds=settings.EDGEFLAGS_RETRAIN_WEBHOOK_BACKOFF_S * 2 ** (attempts - 1))


def _post(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """One attempt: (HTTP status, error text); a 2xx status with no error is delivered."""
    body = bytes(delivery.body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Edgeflags-Webhook/1",
        "X-Edgeflags-Event": "retraining.requested",
        "X-Edgeflags-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: signature(settings.EDGEFLAGS_RETRAIN_WEBHOOK_SECRET, body),
    }
    if not delivery.url.startswith(("https://", "http://")):
        return None, "EDGEFLAGS_RETRAIN_WEBHOOK_URL: not an http(s) URL"
    # The scheme is checked above: no file: or custom schemes reach urllib.
    request = urllib.request.Request(  # noqa: S310
        delivery.url, data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=settings.EDGEFLAGS_RETRAIN_WEBHOOK_TIMEOUT_S
        ) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc))[:MAX_ERROR]


def retrain_webhooks_send(now: datetime | None = None, limit: int = 50) -> dict[str, int]:
    """Attempt every delivery that is due; returns counts by outcome. Each delivery is
    claimed under a row lock (skip locked), so two workers never send the same one at once."""
    now = now or timezone.now()
    outcome = {"delivered": 0, "retrying": 0, "failed": 0}
    for _ in range(limit):
        with transaction.atomic():
            delivery = (
                WebhookDelivery.objects.select_for_update(skip_locked=True)
                .filter(state=WebhookDelivery.State.PENDING, next_attempt_at__lte=now)
                .order_by("next_attempt_at", "pk")
                .first()
            )
            if delivery is None:
                break
            status, error = _post(delivery)
            delivery.attempts += 1
            delivery.last_status = status
            if status is not None and 200 <= status < 300 and not error:
                delivery.state = WebhookDelivery.State.DELIVERED
                delivery.delivered_at = timezone.now()
                delivery.last_error = ""
                outcome["delivered"] += 1
            elif delivery.attempts >= settings.EDGEFLAGS_RETRAIN_WEBHOOK_ATTEMPTS:
                delivery.state = WebhookDelivery.State.FAILED
                delivery.last_error = error or f"HTTP {status}"
                outcome["failed"] += 1
                logger.warning("retraining webhook %s: gave up: %s", delivery.pk, error)
            else:
                delivery.next_attempt_at = now + backoff(delivery.attempts)
                delivery.last_error = error or f"HTTP {status}"
                outcome["retrying"] += 1
            delivery.save()
    return outcome


@transaction.atomic
def webhook_delivery_retry(*, delivery: WebhookDelivery, actor: Actor) -> WebhookDelivery:
    """Send a failed (or waiting) delivery again at the next sweep, attempts counted anew."""
    role_require(actor, "change", "rollout.webhookdelivery")
    delivery.state = WebhookDelivery.State.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = timezone.now()
    delivery.save()
    audit_record(
        actor=actor,
        action="webhook.retry",
        environment=delivery.request.environment.key,
        flag=delivery.request.flag,
        after={"delivery": delivery.pk},
        reason="retry requested",
    )
    transaction.on_commit(_send_soon)
    return delivery


@transaction.atomic
def retrain_request_resolve(*, request: RetrainingRequest, actor: Actor) -> RetrainingRequest:
    """Mark a request handled; the version's watch starts a new window (drift.py)."""
    from rollout.models import DriftWatch

    role_require(actor, "change", "rollout.retrainingrequest")
    if request.resolved_at is not None:
        return request
    request.resolved_at = timezone.now()
    request.save(update_fields=["resolved_at"])
    DriftWatch.objects.filter(
        environment=request.environment,
        flag=request.flag,
        segment_identity=request.segment_identity,
        model_version=request.model_version,
        status=DriftWatch.Status.TRIGGERED,
    ).update(
        status=DriftWatch.Status.WATCHING, epoch=F("epoch") + 1, epoch_start=request.resolved_at
    )
    audit_record(
        actor=actor,
        action="model.retrain.resolved",
        environment=request.environment.key,
        flag=request.flag,
        segment=request.segment_key,
        after={"request": request.pk},
        reason="retraining request resolved",
    )
    return request
