"""Thin Celery tasks of the rollout app."""

from celery import shared_task
from django.db import OperationalError

from rollout.controller import rollout_tick as controller_tick
from rollout.drift import drift_tick as drift_controller_tick
from rollout.retraining import retrain_webhooks_send
from rollout.segment_reach import segment_reach_refresh
from rollout.snapshots.publish import snapshot_repair


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def rollout_tick() -> str:
    """The rollout controller: advance, hold or roll back every ramping segment."""
    return controller_tick().summary()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def republish_snapshots() -> str:
    """Republish every environment whose last publish failed; announce what Redis missed."""
    return snapshot_repair().summary()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def refresh_segment_reach() -> str:
    """Recount what each segment's clients can run (after a ladder change)."""
    return segment_reach_refresh().summary()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def drift_tick() -> str:
    """The drift controller: test every watched model version against its reference."""
    return drift_controller_tick().summary()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def send_retrain_webhooks() -> str:
    """POST the retraining requests that are due to the webhook (retries with backoff)."""
    return str(retrain_webhooks_send())
