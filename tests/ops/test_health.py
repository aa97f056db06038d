"""Health endpoints, housekeeping and default schedules, in-process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from ops import tasks
from ops.models import TaskHeartbeat
from ops.services import admin_ensure, periodic_tasks_ensure

pytestmark = pytest.mark.django_db


def test_healthz__any_state__200_without_touching_dependencies(
    client: Client, django_assert_num_queries
) -> None:
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz__services_up_beat_never_ran__200_degraded_naming_beat(client: Client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert set(body["checks"]) == {"database", "cache", "broker", "beat", "snapshot"}
    assert body["status"] == "degraded"
    assert body["failing"] == ["beat"]
    assert "never run" in body["checks"]["beat"]["reason"]
    for name in ("database", "cache", "broker"):
        assert body["checks"][name]["status"] == "ok"
        assert body["checks"][name]["required"] is True


def test_readyz__housekeeping_just_ran__200_ok(client: Client) -> None:
    tasks.housekeeping.apply()

    body = client.get("/readyz").json()

    assert body["status"] == "ok"
    assert body["checks"]["beat"]["status"] == "ok"


def test_readyz__housekeeping_stale__beat_failing_still_200(client: Client, settings) -> None:
    tasks.housekeeping.apply()
    TaskHeartbeat.objects.filter(name="housekeeping").update(
        last_finished_at=timezone.now()
        - timedelta(seconds=settings.EDGEFLAGS_BEAT_STALE_AFTER_S + 60)
    )

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"]["beat"]["status"] == "failing"
    assert "is `celery beat` running?" in response.json()["checks"]["beat"]["reason"]


def test_housekeeping__expired_sessions__deleted_and_run_counted() -> None:
    from django.contrib.sessions.backends.db import SessionStore

    expired = SessionStore()
    expired.set_expiry(-10)
    expired.save()
    live = SessionStore()
    live.save()

    first = tasks.housekeeping.apply().get()
    second = tasks.housekeeping.apply().get()

    heartbeat = TaskHeartbeat.objects.get(name="housekeeping")
    assert (first, second) == (1, 2)
    assert heartbeat.runs == 2
    assert SessionStore().exists(live.session_key)
    assert not SessionStore().exists(expired.session_key)


def test_default_schedules__after_migrate__housekeeping_scheduled(settings) -> None:
    task = PeriodicTask.objects.get(name="housekeeping")

    assert task.task == "ops.tasks.housekeeping"
    assert task.enabled
    assert task.interval.every == settings.EDGEFLAGS_HOUSEKEEPING_INTERVAL_S


def test_default_schedules__edited_in_admin__not_overwritten() -> None:
    edited, _ = IntervalSchedule.objects.get_or_create(every=42, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(name="housekeeping").update(interval=edited, enabled=False)

    created = periodic_tasks_ensure()

    task = PeriodicTask.objects.get(name="housekeeping")
    assert created == []
    assert task.interval.every == 42
    assert not task.enabled


def test_admin_ensure__no_superuser__created_once_with_generated_password() -> None:
    first = admin_ensure(username="admin")
    second = admin_ensure(username="admin", password="ignored-now")

    assert first.created
    assert first.password
    assert len(first.password) >= 12
    assert not second.created
    assert second.password is None
    assert Client().login(username="admin", password=first.password)
