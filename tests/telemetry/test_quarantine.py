"""The fold goes on past a batch the database refuses: quarantined, visible, replayable.

The refusal is PostgreSQL's own: a trigger on MetricBucket (created inside the test's
transaction, so it vanishes with it) refuses rows of one segment, as a NUL or an oversized
value would; dropping it is "fixing the cause" before a replay.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import connection

from capability_probe.services import client_hash
from rollout.audit import Actor
from rollout.models import AuditEntry, MetricBucket, QuarantinedBatch
from telemetry.aggregates import quarantined_replay, telemetry_fold
from telemetry.buffer import buffered_count, telemetry_append
from telemetry.schema import EventBatch
from tests.support.metrics import scrape, total
from tests.support.telemetry import BUFFER_MODES, FLAG, SEGMENT_IDENTITY, Events

pytestmark = pytest.mark.django_db

POISON = 999  # a segment identity the trigger refuses


@pytest.fixture
def refusing_database() -> Any:
    """PostgreSQL refuses MetricBucket rows of POISON until `fix()` is called."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (CI has it)")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.segment_identity = {POISON} THEN "
            "RAISE EXCEPTION 'refused by the test' USING ERRCODE = '22000'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON rollout_metricbucket "
            "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
        )

    def fix() -> None:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_poison ON rollout_metricbucket")

    return fix


def _poison(environment_id: int) -> None:
    """A batch already in the buffer (as an older server would have accepted it)."""
    event = {"type": "crash", "flag": FLAG, "segment": POISON, "arm": "treatment",
             "ts": time.time()}  # fmt: skip
    telemetry_append(
        environment_id=environment_id,
        client=client_hash("poisoned"),
        batch=EventBatch("poisoned", ("p-1",), (event,)),
        received_at=time.time(),
    )


def test_fold__poison_batch_between_good_ones__quarantined_and_fold_goes_on(
    send, flags, buffer_mode, refusing_database, caplog
) -> None:
    event = Events()
    assert send("device-a", [event("inference", ms=10)]).status_code == 202
    _poison(flags.pk)
    assert send("device-b", [event("inference", ms=20)]).status_code == 202
    name, before = "edgeflags_telemetry_quarantined_batches_total", scrape()

    outcome = telemetry_fold(chunk=10)

    assert (outcome.batches, outcome.quarantined) == (2, 1)
    assert buffered_count() == 0
    bucket = MetricBucket.objects.get(segment_identity=SEGMENT_IDENTITY)
    assert (bucket.clients, bucket.inference_ms_sum) == (2, 30.0)
    (held,) = QuarantinedBatch.objects.all()
    assert held.source == buffer_mode
    assert "refused by the test" in held.error
    assert b'"segment":%d' % POISON in bytes(held.entry)
    assert any(r.levelname == "ERROR" and "quarantined" in r.message for r in caplog.records)
    assert total(scrape(), name, source=buffer_mode) - total(before, name, source=buffer_mode) == 1

    # the next fold is not stuck on it
    assert send("device-c", [event("inference", ms=5)]).status_code == 202
    assert telemetry_fold().batches == 1


@pytest.mark.parametrize("buffer_mode", [m for m in BUFFER_MODES if m == "redis"], indirect=True)
def test_fold__nul_in_a_buffered_event__quarantined_not_stalled(send, flags, buffer_mode) -> None:
    # What issue 11 saw: a NUL (accepted by an older intake) made every fold fail on PostgreSQL.
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (CI has it): SQLite takes the NUL")
    event = {"type": "crash", "flag": "a\x00b", "segment": SEGMENT_IDENTITY, "arm": "treatment",
             "ts": time.time()}  # fmt: skip
    telemetry_append(
        environment_id=flags.pk,
        client=client_hash("nul"),
        batch=EventBatch("nul", ("n-1",), (event,)),
        received_at=time.time(),
    )
    assert send("device-a", [Events()("exposure")]).status_code == 202

    outcome = telemetry_fold()

    assert (outcome.batches, outcome.quarantined) == (1, 1)
    assert "\x00" not in QuarantinedBatch.objects.get().error
    assert buffered_count() == 0
    assert MetricBucket.objects.filter(segment_identity=SEGMENT_IDENTITY).count() == 1


def test_quarantined_replay__cause_fixed__applied_once_audited_row_gone(
    flags, buffer_mode, refusing_database
) -> None:
    _poison(flags.pk)
    telemetry_fold()
    held = QuarantinedBatch.objects.get()
    admin = User.objects.create_superuser("root", "r@example.com", "pw-for-tests-only")

    assert quarantined_replay(quarantined=held, actor=Actor.of(admin)) is False
    held.refresh_from_db()
    assert held.attempts == 2

    refusing_database()
    assert quarantined_replay(quarantined=held, actor=Actor.of(admin)) is True

    assert MetricBucket.objects.get(segment_identity=POISON).failures == 1
    assert not QuarantinedBatch.objects.exists()
    entry = AuditEntry.objects.get(action="telemetry.replay")
    assert entry.actor_name == "root"


def test_quarantined_replay__not_a_superuser__refused(
    flags, buffer_mode, refusing_database
) -> None:
    _poison(flags.pk)
    telemetry_fold()
    staff = User.objects.create_user("viewer", password="pw-for-tests-only", is_staff=True)

    with pytest.raises(PermissionDenied):
        quarantined_replay(quarantined=QuarantinedBatch.objects.get(), actor=Actor.of(staff))
    assert QuarantinedBatch.objects.count() == 1


def test_quarantine_admin__read_only_and_replay_action_needs_superuser(
    flags, refusing_database, client
) -> None:
    _poison(flags.pk)
    telemetry_fold()
    held = QuarantinedBatch.objects.get()
    User.objects.create_user("staffer", password="pw-for-tests-only", is_staff=True)
    User.objects.create_superuser("root", "r@example.com", "pw-for-tests-only")
    url = "/admin/rollout/quarantinedbatch/"
    action = {"action": "replay", "_selected_action": [held.pk]}

    client.login(username="staffer", password="pw-for-tests-only")
    client.post(url, action)
    assert QuarantinedBatch.objects.count() == 1  # a staff user without rights changes nothing
    client.logout()

    client.login(username="root", password="pw-for-tests-only")
    page = client.get(f"{url}{held.pk}/change/")
    assert page.status_code == 200
    assert b"refused by the test" in page.content
    assert b'name="_save"' not in page.content  # read-only
    refusing_database()
    assert client.post(url, action).status_code == 302
    assert not QuarantinedBatch.objects.exists()
