"""Realistic demo data for `make run`, loaded idempotently by `manage.py load_demo`."""

from __future__ import annotations

from django.db import transaction

from ops.services import periodic_tasks_ensure


@transaction.atomic
def demo_load() -> list[str]:
    """Create whatever demo data is missing; return a line per thing created."""
    created = [f"periodic task {name}" for name in periodic_tasks_ensure()]
    return created
