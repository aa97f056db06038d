"""Thin Celery tasks of the capability_probe app."""

from celery import shared_task
from django.db import OperationalError

from capability_probe import services


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def purge_expired_probes() -> dict[str, int]:
    """Retention: delete profiles and probe receipts past EDGEFLAGS_PROBE_RETENTION_DAYS."""
    return services.probes_purge_expired()
