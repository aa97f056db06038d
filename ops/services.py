"""Writes of the ops app: heartbeats, housekeeping, default schedules, the first admin."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from ops.models import TaskHeartbeat
from ops.schedules import DEFAULT_PERIODIC_TASKS, PeriodicTaskSpec


@transaction.atomic
def heartbeat_record(*, name: str, started_at: datetime, detail: dict[str, Any]) -> TaskHeartbeat:
    """Record that the periodic task `name` finished a run that began at `started_at`."""
    finished_at = timezone.now()
    duration_ms = max(0, int((finished_at - started_at).total_seconds() * 1000))
    heartbeat, created = TaskHeartbeat.objects.get_or_create(
        name=name,
        defaults={
            "last_started_at": started_at,
            "last_finished_at": finished_at,
            "last_duration_ms": duration_ms,
            "last_detail": detail,
            "runs": 1,
        },
    )
    if not created:
        TaskHeartbeat.objects.filter(name=name).update(
            last_started_at=started_at,
            last_finished_at=finished_at,
            last_duration_ms=duration_ms,
            last_detail=detail,
            runs=F("runs") + 1,
        )
        heartbeat.refresh_from_db()
    return heartbeat


def housekeeping_run() -> TaskHeartbeat:
    """Delete expired sessions and record the run; beat's liveness is read from this record."""
    started_at = timezone.now()
    expired_sessions, _ = Session.objects.filter(expire_date__lt=started_at).delete()
    return heartbeat_record(
        name="housekeeping",
        started_at=started_at,
        detail={"expired_sessions_deleted": expired_sessions},
    )


def _schedule_for(spec: PeriodicTaskSpec) -> dict[str, Any]:
    if spec.every_seconds is not None:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=spec.every_seconds, period=IntervalSchedule.SECONDS
        )
        return {"interval": interval}
    assert spec.crontab is not None
    minute, hour, day_of_month, month_of_year, day_of_week = spec.crontab.split()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone="UTC",
    )
    return {"crontab": crontab}


@transaction.atomic
def periodic_tasks_ensure() -> list[str]:
    """Create the default periodic tasks that are missing; never overwrite an admin's edits."""
    created: list[str] = []
    existing = set(
        PeriodicTask.objects.filter(
            name__in=[spec.name for spec in DEFAULT_PERIODIC_TASKS]
        ).values_list("name", flat=True)
    )
    for spec in DEFAULT_PERIODIC_TASKS:
        if spec.name in existing:
            continue
        # django-celery-beat counts a new task's first interval from its creation; a
        # last run one interval ago makes it due when beat starts.
        last_run_at = (
            timezone.now() - timedelta(seconds=spec.every_seconds)
            if spec.run_at_first_beat and spec.every_seconds
            else None
        )
        PeriodicTask.objects.create(
            name=spec.name,
            task=spec.task,
            description=spec.description,
            last_run_at=last_run_at,
            **_schedule_for(spec),
        )
        created.append(spec.name)
    return created


@dataclass(frozen=True)
class AdminLogin:
    username: str
    password: str | None  # None when the admin already existed: its password is not known.
    created: bool


@transaction.atomic
def admin_ensure(*, username: str, password: str = "") -> AdminLogin:
    """Create a superuser when none exists; the password is given or generated once."""
    user_model = get_user_model()
    existing = user_model.objects.filter(is_superuser=True).order_by("pk").first()
    if existing is not None:
        return AdminLogin(username=existing.get_username(), password=None, created=False)
    password = password or secrets.token_urlsafe(12)
    user_model.objects.create_superuser(
        username=username, email=f"{username}@localhost", password=password
    )
    return AdminLogin(username=username, password=password, created=True)
