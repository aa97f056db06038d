"""Thin Celery tasks of the telemetry app."""

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone
from redis import ConnectionError as RedisConnectionError

from telemetry.aggregates import telemetry_fold, telemetry_purge


@shared_task(
    autoretry_for=(OperationalError, RedisConnectionError), retry_backoff=True, max_retries=3
)
def fold_telemetry() -> int:
    """Fold buffered client telemetry into the aggregates; returns the batches folded.

    Safe to run concurrently and to redo after a crash: every batch is counted once.
    """
    return telemetry_fold().batches


@shared_task
def purge_telemetry() -> dict[str, int]:
    """Forget expired deduplication ids, failure marks and aggregates past their retention."""
    return telemetry_purge(timezone.now())
