"""django-celery-beat's admins, replaced: the same pages, but editing, enabling, disabling
and running a schedule needs the release manager role and is audited (rollout/schedule_changes.py).
The package's own admin actions declare no permission, so anyone who can see the list
could run them."""

from __future__ import annotations

import django_celery_beat.admin as beat_admin
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from backoffice.base import AuditedAdmin
from rollout.audit import Actor
from rollout.schedule_changes import ScheduleError, periodic_tasks_run, periodic_tasks_set_enabled

for model in (PeriodicTask, IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(AuditedAdmin, beat_admin.PeriodicTaskAdmin):  # type: ignore[misc]
    def _enabled(
        self, request: HttpRequest, queryset: QuerySet[PeriodicTask], on: bool | None
    ) -> None:
        changed = periodic_tasks_set_enabled(
            tasks=list(queryset), enabled=on, actor=Actor.of(request.user)
        )
        self.message_user(request, f"{changed} schedule(s) changed.")

    @admin.action(description="Enable selected tasks", permissions=["change"])
    def enable_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        self._enabled(request, queryset, True)

    @admin.action(description="Disable selected tasks", permissions=["change"])
    def disable_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        self._enabled(request, queryset, False)

    @admin.action(description="Toggle activity of selected tasks", permissions=["change"])
    def toggle_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        self._enabled(request, queryset, None)

    @admin.action(description="Run selected tasks", permissions=["change"])
    def run_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        try:
            sent = periodic_tasks_run(tasks=list(queryset), actor=Actor.of(request.user))
        except ScheduleError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return
        self.message_user(request, f"{sent} task(s) sent to the workers.")


@admin.register(ClockedSchedule)
class ClockedScheduleAdmin(AuditedAdmin, beat_admin.ClockedScheduleAdmin):  # type: ignore[misc]
    pass


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(AuditedAdmin, beat_admin.CrontabScheduleAdmin):  # type: ignore[misc]
    pass


@admin.register(SolarSchedule)
class SolarScheduleAdmin(AuditedAdmin, beat_admin.SolarScheduleAdmin):  # type: ignore[misc]
    pass


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(AuditedAdmin, beat_admin.IntervalScheduleAdmin):  # type: ignore[misc]
    pass
