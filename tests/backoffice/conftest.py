"""People in each role, and a world with at least one row of every model the admin shows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from knox.models import AuthToken

from access.api_keys import api_key_create
from capability_probe.models import ClientProfile
from ops.models import TaskHeartbeat
from rollout.edge_models import model_version_register
from rollout.models import (
    ApiKey,
    DriftWatch,
    FlagState,
    QuarantinedBatch,
    RetrainingRequest,
    Rung,
    WebhookDelivery,
)
from rollout.roles import RELEASE_MANAGER, VIEWER, roles_ensure
from rollout.services import segment_create
from segments.models import CapabilitySegment, SegmentationModel, SegmentationRun


def person(name: str, group: str | None = None, *, superuser: bool = False) -> User:
    roles_ensure()
    user = User.objects.create_user(
        name, password="pw-for-tests-only", is_staff=True, is_superuser=superuser
    )
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer() -> Client:
    return logged_in(person("vi", VIEWER))


@pytest.fixture
def groupless() -> Client:
    """Staff (may sign in to the admin) but in no group."""
    return logged_in(person("nogroup"))


@pytest.fixture
def manager() -> Client:
    return logged_in(person("rm", RELEASE_MANAGER))


@pytest.fixture
def superuser() -> Client:
    return logged_in(person("root-user", superuser=True))


@pytest.fixture
def world(plan, publish) -> dict[str, object]:
    """One row (at least) of every registered model, a segment waiting for review, a live
    client key, an enabled schedule."""
    state: FlagState = plan.flag_state
    _, raw = publish(
        lambda: api_key_create(environment=state.environment, scope="client", name="web app")
    )
    publish(lambda: segment_create(key="beta", constraints=[]))
    review = CapabilitySegment.objects.create(identity=9, key="fresh-cluster", label="fresh")
    review.status = CapabilitySegment.Status.REVIEW
    review.save()
    run = SegmentationRun.objects.create(trigger="schedule")
    SegmentationModel.objects.create(version=1, artifact={}, run=run, is_current=False)
    ClientProfile.objects.create(client_hash="a" * 64, received_at=timezone.now())
    now = timezone.now()
    TaskHeartbeat.objects.create(
        name="housekeeping", last_started_at=now, last_finished_at=now, last_duration_ms=3
    )
    every, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    CrontabSchedule.objects.get_or_create(minute="30", hour="3")
    SolarSchedule.objects.get_or_create(event="sunrise", latitude=48.85, longitude=2.35)
    ClockedSchedule.objects.get_or_create(clocked_time=now + timedelta(days=1))
    task, _ = PeriodicTask.objects.update_or_create(
        name="rollout controller",
        defaults={"task": "rollout.tasks.rollout_tick", "interval": every, "enabled": True},
    )
    AuthToken.objects.create(user=person("api-user"))
    QuarantinedBatch.objects.create(
        source=QuarantinedBatch.Source.REDIS, entry=b"{\x00", error="not JSON", quarantined_at=now
    )
    flag = state.flag
    Rung.objects.filter(flag=flag, key="edge").update(runs_on=Rung.RunsOn.DEVICE)
    model_version_register(
        flag=flag,
        rung="edge",
        name="tiny-reply",
        version="1.0.0",
        url="https://models.example.com/tiny-reply-1.onnx",
        size_bytes=1024,
        sha256="d" * 64,
    )
    request = RetrainingRequest.objects.create(
        environment=state.environment,
        flag=flag.key,
        segment_identity=1,
        segment_key="edge-ready",
        model_version="1.0.0",
        source=RetrainingRequest.Source.DRIFT,
        reason="acceptance decayed",
        filed_by="drift controller",
        filed_at=now,
    )
    WebhookDelivery.objects.create(
        request=request, url="http://127.0.0.1:9/hook", body=b"{}", next_attempt_at=now
    )
    DriftWatch.objects.create(
        environment=state.environment,
        flag=flag.key,
        segment_identity=1,
        model_version="1.0.0",
        reference_start=now,
    )
    missing = [
        model._meta.label for model in admin.site._registry if not model._default_manager.exists()
    ]
    assert not missing, f"give the door tests a row of {missing}"
    return {
        "key": ApiKey.objects.get(prefix=raw[:12]),
        "review": review,
        "task": task,
        "raw_key": raw,
    }
