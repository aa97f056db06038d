"""A change that cannot be published fails alone; bad data elsewhere never freezes publishing."""

from __future__ import annotations

import orjson
import pytest
from django.db import transaction
from django.test import Client

from rollout import tasks
from rollout.models import (
    FlagState,
    PublishFailure,
    SegmentRollout,
    SnapshotVersion,
    TargetingRule,
)
from rollout.services import flag_create, rule_create
from rollout.snapshots.publish import SnapshotUnpublishable, publish_batch
from rollout.snapshots.store import VERSIONS_KEY, _redis, store
from tests.support.metrics import scrape, total

pytestmark = pytest.mark.django_db

STATE_URL = "/api/v1/flags/smart-compose/environments/production"
KILL_URL = "/api/v1/rollouts/smart-compose/production/kill"


def _held() -> dict:
    """The document an API process serves for production now (loaded as a new process would)."""
    store.reset()
    held = store.snapshot("production")
    assert held is not None
    return orjson.loads(held.document_bytes)


def _flag(document: dict, key: str) -> dict:
    return next(flag for flag in document["flags"] if flag["key"] == key)


def _kill(staff: Client, publish) -> None:
    response = publish(
        lambda: staff.post(KILL_URL, data={"reason": "incident"}, content_type="application/json")
    )
    assert response.status_code == 200, response.content


def test_kill__after_refused_surrogate_nul_and_deep_input__published_to_clients(
    plan, staff, publish
) -> None:
    before = _held()["version"]
    for bad in ('"\\ud800"', '"a\\u0000b"', "[" * 5000 + "]" * 5000):
        response = publish(
            lambda bad=bad: staff.patch(
                STATE_URL, data='{"offValue": ' + bad + "}", content_type="application/json"
            )
        )
        assert response.status_code == 400

    _kill(staff, publish)

    served = _held()
    assert served["version"] == before + 1  # the refused changes published nothing
    rollout = _flag(served, "smart-compose")["ladder"]["rollout"]["segments"]
    assert {entry["state"] for entry in rollout.values()} == {"rolled_back"}
    assert not PublishFailure.objects.exists()


@pytest.fixture
def corrupt_flag(environment, publish) -> FlagState:
    """Another flag whose row was then written around the services with a value orjson
    refuses (PostgreSQL takes a 70-bit integer; orjson stops at 64 bits)."""
    publish(lambda: flag_create(key="other-flag", kind="number", off_value=7))
    state = FlagState.objects.get(flag__key="other-flag", environment=environment)
    FlagState.objects.filter(pk=state.pk).update(off_value=2**70)
    return state


def test_kill__other_flag_unpublishable__kill_published_failure_on_readyz(
    plan, corrupt_flag, staff, publish, client
) -> None:
    failures, before = "edgeflags_snapshot_publish_failures_total", scrape()

    _kill(staff, publish)

    served = _held()
    rollout = _flag(served, "smart-compose")["ladder"]["rollout"]["segments"]
    assert {entry["state"] for entry in rollout.values()} == {"rolled_back"}
    assert _flag(served, "other-flag")["offValue"] == 7  # its last published form
    body = client.get("/readyz").json()
    assert body["status"] == "degraded"
    assert "snapshot" in body["failing"]
    reason = body["checks"]["snapshot"]["reason"]
    assert "production" in reason
    assert "other-flag" in reason
    labels = {"environment": "production", "kind": "kept_back"}
    assert total(scrape(), failures, **labels) - total(before, failures, **labels) == 1


def test_change_of_unpublishable_flag__refused_naming_it__nothing_committed(
    plan, corrupt_flag, staff, publish
) -> None:
    versions = SnapshotVersion.objects.count()

    # Over the API the row's own validators refuse it first, naming the field...
    response = staff.patch(
        "/api/v1/flags/other-flag/environments/production",
        data={"enabled": True},
        content_type="application/json",
    )
    # ...and a change that validates only its own row fails on the compiled snapshot.
    with pytest.raises(SnapshotUnpublishable) as refused, transaction.atomic():
        rule_create(state=corrupt_flag, strategy="default")

    assert response.status_code == 400, response.content
    assert "off_value" in response.json()
    assert refused.value.field == "flags.other-flag"
    assert not TargetingRule.objects.filter(state=corrupt_flag).exists()
    assert FlagState.objects.get(pk=corrupt_flag.pk).enabled is False
    assert SnapshotVersion.objects.count() == versions


def test_republish_task__failed_publish_repaired__readyz_ok_again(
    plan, corrupt_flag, staff, publish, client
) -> None:
    _kill(staff, publish)
    assert PublishFailure.objects.filter(environment__key="production").exists()
    FlagState.objects.filter(pk=corrupt_flag.pk).update(off_value=8)  # the data fixed by hand

    summary = publish(lambda: tasks.republish_snapshots.apply().get())

    assert "republished production" in summary
    assert not PublishFailure.objects.exists()
    assert _flag(_held(), "other-flag")["offValue"] == 8
    assert client.get("/readyz").json()["checks"]["snapshot"]["status"] == "ok"


def test_republish_task__version_redis_missed__readyz_names_it_then_announced(
    plan, staff, django_capture_on_commit_callbacks, client
) -> None:
    _redis().hdel(VERSIONS_KEY, "production")  # as if Redis was away when it committed
    with django_capture_on_commit_callbacks(execute=False):
        staff.post(KILL_URL, data={"reason": "incident"}, content_type="application/json")
    latest = SnapshotVersion.objects.filter(environment__key="production").latest("version")

    degraded = client.get("/readyz").json()["checks"]["snapshot"]
    summary = tasks.republish_snapshots.apply().get()

    assert degraded["status"] == "failing"
    assert "production" in degraded["reason"]
    assert "not announced" in degraded["reason"]
    assert "re-announced production" in summary
    assert int(_redis().hget(VERSIONS_KEY, "production")) == latest.version
    assert client.get("/readyz").json()["checks"]["snapshot"]["status"] == "ok"
    assert set(SegmentRollout.objects.values_list("state", flat=True)) == {"rolled_back"}


def test_publish_batch__many_changes__one_version_with_all_of_them(environment, publish) -> None:
    before = SnapshotVersion.objects.filter(environment=environment).count()

    def change() -> None:
        with publish_batch():
            for number in range(5):
                flag_create(key=f"batch-flag-{number}", kind="number", off_value=number)

    publish(change)

    assert SnapshotVersion.objects.filter(environment=environment).count() == before + 1
    served = _held()
    assert [_flag(served, f"batch-flag-{n}")["offValue"] for n in range(5)] == [0, 1, 2, 3, 4]


def test_publish_batch__unpublishable_change_inside__whole_block_refused(
    plan, corrupt_flag, publish
) -> None:
    versions = SnapshotVersion.objects.count()

    def one_batch() -> None:
        with transaction.atomic(), publish_batch():
            flag_create(key="batch-flag", kind="number", off_value=1)
            rule_create(state=corrupt_flag, strategy="default")

    with pytest.raises(SnapshotUnpublishable) as refused:
        one_batch()

    assert refused.value.field == "flags.other-flag"
    assert not FlagState.objects.filter(flag__key="batch-flag").exists()
    assert not TargetingRule.objects.filter(state=corrupt_flag).exists()
    assert SnapshotVersion.objects.count() == versions
