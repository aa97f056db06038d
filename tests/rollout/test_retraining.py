"""Drift and retraining on PostgreSQL: the drift controller files a request on a sustained
decay (audit entry with its evidence, console notice), the webhook is signed and retried
against a real local HTTP receiver, a failing receiver is given up on and never blocks the
controller, and `manage.py retrain_request` takes the same path."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from rollout.drift import drift_tick, recent_freshness, window_sums
from rollout.guardrails.drift import STALE_TREND_INTERVALS
from rollout.models import (
    AuditEntry,
    DriftWatch,
    Environment,
    FlagState,
    MetricBucket,
    RetrainingRequest,
    WebhookDelivery,
)
from rollout.retraining import retrain_webhooks_send, signature
from rollout.selectors import segment_identities
from tests.support.demo import load_demo

pytestmark = pytest.mark.django_db

SECRET = "whsec-test-only"
# A version of the test's own: the demo's history already watches 2.0.0 and 3.0.0.
VERSION = "2.9.0"


class Receiver:
    """A real HTTP server on loopback: records every POST; answers `statuses` in turn
    (then 200), or sleeps `delay` seconds before answering."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/retrain"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    hooks = Receiver()
    settings.EDGEFLAGS_RETRAIN_WEBHOOK_URL = hooks.url
    settings.EDGEFLAGS_RETRAIN_WEBHOOK_SECRET = SECRET
    settings.EDGEFLAGS_RETRAIN_WEBHOOK_TIMEOUT_S = 1.0
    settings.EDGEFLAGS_RETRAIN_WEBHOOK_ATTEMPTS = 3
    settings.EDGEFLAGS_RETRAIN_WEBHOOK_BACKOFF_S = 30.0
    yield hooks
    hooks.server.shutdown()


@pytest.fixture
def demo(publish) -> Environment:
    load_demo(publish)
    return Environment.objects.get(key="production")


def _segment() -> tuple[str, int]:
    key, identity = next((k, i) for k, i in sorted(segment_identities().items()) if i)
    return key, identity


def _feed(environment: Environment, identity: int, start, hours: int, acceptance: float, seed: int):
    """An hour per row: 1,000 clients' acceptance shares, as the fold sums them."""
    rng = np.random.default_rng(seed)
    for hour in range(hours):
        propensity = rng.beta(20 * acceptance, 20 * (1 - acceptance), 1000)
        shares = rng.binomial(4, propensity) / 4
        MetricBucket.objects.create(
            environment=environment,
            flag="smart-compose",
            segment_identity=identity,
            arm="none",
            rung="edge",
            model_version=VERSION,
            minute=start + timedelta(hours=hour),
            acceptance_n=shares.size,
            acceptance_sum=float(shares.sum()),
            acceptance_sumsq=float(np.square(shares).sum()),
        )


def test_drift_tick__sustained_decay__request_filed_with_evidence_and_shown(
    demo, receiver, admin_client
) -> None:
    key, identity = _segment()
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=48)
    _feed(demo, identity, start, 26, acceptance=0.30, seed=1)  # the reference day, and more
    _feed(demo, identity, start + timedelta(hours=26), 22, acceptance=0.27, seed=2)  # -10 %

    collecting = drift_tick(start + timedelta(hours=12))
    reference_closed = drift_tick(start + timedelta(hours=25))
    decayed = drift_tick(start + timedelta(hours=48))

    assert collecting.filed == []
    assert reference_closed.filed == []
    assert len(decayed.filed) == 1, decayed.summary()
    watch = DriftWatch.objects.get(segment_identity=identity, model_version=VERSION)
    assert watch.status == DriftWatch.Status.TRIGGERED
    request = RetrainingRequest.objects.get(environment=demo)
    assert (request.segment_key, request.model_version, request.metric) == (
        key,
        VERSION,
        "acceptance",
    )
    assert request.source == RetrainingRequest.Source.DRIFT
    evidence = request.evidence
    shown = evidence["metrics"][0]
    assert shown["metric"] == "acceptance"
    assert 0.29 < shown["reference"] < 0.31
    assert 0.26 < shown["current"] < 0.28
    assert shown["interval"][0] > 0
    assert shown["n"]["reference"] == 24_000
    entry = AuditEntry.objects.get(action="model.retrain", environment="production")
    assert (entry.actor_name, entry.segment, entry.evidence["modelVersion"]) == (
        "drift controller",
        key,
        VERSION,
    )
    # Clients are served exactly what they were: no publish, no state change.
    state = FlagState.objects.get(flag__key="smart-compose", environment=demo)
    assert state.model_version.version == "2.0.0"
    page = admin_client.get("/admin/console/flags/smart-compose?environment=production")
    assert "Retraining requested" in page.content.decode()
    assert f"{VERSION} in {key}" in page.content.decode()
    # The webhook is only queued: the controller sent nothing itself.
    assert receiver.received == []
    assert WebhookDelivery.objects.get().state == WebhookDelivery.State.PENDING
    # Triggered: the next run files nothing more.
    assert drift_tick(start + timedelta(hours=49)).filed == []


def test_webhook__signed_body_with_the_evidence_delivered(demo, receiver) -> None:
    key, _ = _segment()
    out = StringIO()
    call_command(
        "retrain_request", "smart-compose", "--environment", "production", "--segment", key,
        "--reason", "INC-51: replies off-topic", stdout=out,
    )  # fmt: skip

    sent = retrain_webhooks_send()

    assert "webhook delivery queued" in out.getvalue()
    assert sent == {"delivered": 1, "retrying": 0, "failed": 0}
    headers, body = receiver.received[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Edgeflags-Signature"] == expected == signature(SECRET, body)
    payload = json.loads(body)
    assert (payload["type"], payload["flag"], payload["segment"]) == (
        "retraining.requested",
        "smart-compose",
        key,
    )
    assert (payload["modelVersion"], payload["source"]) == ("2.0.0", "person")
    assert payload["reason"] == "INC-51: replies off-topic"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 1, 200)
    assert bytes(delivery.body) == body  # the admin shows exactly what was signed and sent


def test_webhook__failing_receiver__retried_with_backoff_then_given_up(demo, receiver) -> None:
    key, _ = _segment()
    receiver.statuses = [500, 503, 500, 500]
    call_command(
        "retrain_request", "smart-compose", "--environment", "production", "--segment", key,
        "--reason", "try", stdout=StringIO(),
    )  # fmt: skip
    now = timezone.now()

    first = retrain_webhooks_send(now)
    too_soon = retrain_webhooks_send(now + timedelta(seconds=29))
    second = retrain_webhooks_send(now + timedelta(seconds=31))
    third = retrain_webhooks_send(now + timedelta(seconds=31 + 61))

    assert first == {"delivered": 0, "retrying": 1, "failed": 0}
    assert too_soon == {"delivered": 0, "retrying": 0, "failed": 0}  # backoff: 30 s, then 60 s
    assert second["retrying"] == 1
    assert third == {"delivered": 0, "retrying": 0, "failed": 1}
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("failed", 3, "HTTP 500")
    assert len(receiver.received) == 3
    # Each attempt carried the same signed bytes.
    assert len({body for _, body in receiver.received}) == 1


def test_webhook__unreachable_receiver__error_recorded(demo, settings) -> None:
    settings.EDGEFLAGS_RETRAIN_WEBHOOK_URL = "http://127.0.0.1:9/closed"
    settings.EDGEFLAGS_RETRAIN_WEBHOOK_TIMEOUT_S = 1.0
    key, _ = _segment()
    call_command(
        "retrain_request", "smart-compose", "--environment", "production", "--segment", key,
        "--reason", "try", stdout=StringIO(),
    )  # fmt: skip

    assert retrain_webhooks_send()["retrying"] == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_status is None
    assert "refused" in delivery.last_error.lower()


def test_drift_tick__hanging_receiver__never_waited_for(demo, receiver) -> None:
    receiver.delay = 5.0
    _key, identity = _segment()
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=48)
    _feed(demo, identity, start, 26, acceptance=0.30, seed=3)
    _feed(demo, identity, start + timedelta(hours=26), 22, acceptance=0.24, seed=4)
    drift_tick(start + timedelta(hours=25))

    began = time.monotonic()
    report = drift_tick(start + timedelta(hours=48))

    assert len(report.filed) == 1
    assert time.monotonic() - began < 2.0
    assert receiver.received == []


def test_retrain_request__unknown_segment__command_error_naming_it(demo) -> None:
    from django.core.management.base import CommandError

    before = RetrainingRequest.objects.count()
    with pytest.raises(CommandError, match=r"^segment: "):
        call_command(
            "retrain_request", "smart-compose", "--environment", "production",
            "--segment", "nope", "--reason", "x",
        )  # fmt: skip
    assert before == RetrainingRequest.objects.count()


def test_recent_freshness__one_query__equals_each_intervals_own_sums(
    demo, django_assert_num_queries
) -> None:
    """The stale rule's trend reads six intervals in one query; the sums are those of six
    separate window queries (the demo's 72 h of telemetry, minutes on the boundaries too)."""
    watch = DriftWatch.objects.filter(flag="smart-compose").exclude(model_version="").first()
    assert watch is not None
    now = MetricBucket.objects.filter(flag="smart-compose").latest("minute").minute
    interval = timedelta(seconds=settings.EDGEFLAGS_DRIFT_INTERVAL_S)

    with django_assert_num_queries(1):
        recent = recent_freshness(watch, now)

    starts = [now - interval * k for k in range(STALE_TREND_INTERVALS, 0, -1)]
    separate = [window_sums(watch, s, s + interval)["freshness"] for s in starts]
    assert len(recent) == STALE_TREND_INTERVALS
    assert [a.n for a in recent] == [a.n for a in separate]
    assert sum(a.n for a in recent) > 0
    for mine, theirs in zip(recent, separate, strict=True):
        assert mine.total == pytest.approx(theirs.total)
        assert mine.total_squares == pytest.approx(theirs.total_squares)
