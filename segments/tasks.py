"""Thin Celery tasks of the segments app."""

import logging

from celery import shared_task

from segments.services import SegmentationBusy, segmentation_run

logger = logging.getLogger(__name__)


@shared_task(acks_late=False)
def run_segmentation(trigger: str = "schedule", seed: int = 0) -> int | None:
    """Run segmentation; when a run is already going, this one is skipped (runs never overlap).

    Not acknowledged late: a run killed with its worker is recorded as failed and the next
    scheduled run starts afresh, rather than the broker replaying an hour-long job.
    """
    try:
        return segmentation_run(trigger=trigger, seed=seed).pk
    except SegmentationBusy as exc:
        logger.info("segmentation skipped: %s", exc)
        return None
