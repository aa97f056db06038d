"""The periodic schedules (django-celery-beat's tables) changed by a person: enable, disable,
toggle and run now, each role-checked and audited. Edits of a schedule's form go through
the admin's audited save (rollout.services.row_save)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import partial
from typing import Any

from celery import current_app
from django.db import transaction
from django_celery_beat.models import PeriodicTask

from ops.errors import DomainError
from rollout.audit import Actor, audit_record
from rollout.roles import role_require

LABEL = "django_celery_beat.periodictask"


class ScheduleError(DomainError):
    """A schedule request that cannot be carried out; `field` names what was wrong."""


@transaction.atomic
def periodic_tasks_set_enabled(
    *, tasks: Iterable[PeriodicTask], enabled: bool | None, actor: Actor, reason: str = ""
) -> int:
    """Enable (True), disable (False) or toggle (None) periodic tasks; returns how many
    changed. Each one saved on its own, so beat notices the change."""
    role_require(actor, "change", LABEL)
    changed = 0
    for task in tasks:
        wanted = (not task.enabled) if enabled is None else enabled
        if task.enabled == wanted:
            continue
        before = {"enabled": task.enabled}
        task.enabled = wanted
        if not wanted:
            task.last_run_at = None  # as django-celery-beat's own action: due afresh when on
        task.save()
        audit_record(
            actor=actor,
            action="schedule.enable" if wanted else "schedule.disable",
            before={"schedule": task.name, **before},
            after={"schedule": task.name, "enabled": wanted},
            reason=reason or "changed in the admin",
        )
        changed += 1
    return changed


def _arguments(task: PeriodicTask) -> tuple[list[Any], dict[str, Any]]:
    try:
        args, kwargs = json.loads(task.args or "[]"), json.loads(task.kwargs or "{}")
    except json.JSONDecodeError as exc:
        raise ScheduleError("args", f"{task.name}: not JSON ({exc})") from exc
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise ScheduleError("args", f"{task.name}: args must be a list and kwargs an object")
    return args, kwargs


@transaction.atomic
def periodic_tasks_run(*, tasks: Iterable[PeriodicTask], actor: Actor, reason: str = "") -> int:
    """Send periodic tasks to the workers now (once the audit entries commit); returns how
    many were sent. A task name no worker knows is refused before anything is sent."""
    role_require(actor, "change", LABEL)
    current_app.loader.import_default_modules()
    chosen = list(tasks)
    for task in chosen:
        if task.task not in current_app.tasks:
            raise ScheduleError("task", f"{task.name}: no registered task {task.task!r}")
    for task in chosen:
        args, kwargs = _arguments(task)
        audit_record(
            actor=actor,
            action="schedule.run",
            after={"schedule": task.name, "task": task.task},
            reason=reason or "run from the admin",
        )
        options: dict[str, Any] = {"headers": {"periodic_task_name": task.name}}
        if task.queue:
            options["queue"] = task.queue
        transaction.on_commit(partial(current_app.send_task, task.task, args, kwargs, **options))
    return len(chosen)
