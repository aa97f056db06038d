"""Thin Celery tasks of the ops app."""

from celery import shared_task
from django.db import OperationalError

from ops import services


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def housekeeping() -> int:
    """Periodic housekeeping; returns the number of runs recorded so far."""
    return services.housekeeping_run().runs
