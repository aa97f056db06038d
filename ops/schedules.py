"""Every periodic schedule of Edgeflags, in one place.

They are created in django-celery-beat's tables after `migrate` when missing, and from then
on belong to the operators: edits made in the admin (Periodic tasks) are never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class PeriodicTaskSpec:
    name: str
    task: str
    description: str
    every_seconds: int | None = None
    crontab: str | None = None  # "minute hour day-of-month month day-of-week", UTC
    # Due as soon as beat first starts, instead of one full interval later.
    run_at_first_beat: bool = False


DEFAULT_PERIODIC_TASKS: tuple[PeriodicTaskSpec, ...] = (
    PeriodicTaskSpec(
        name="housekeeping",
        task="ops.tasks.housekeeping",
        description="Delete expired sessions; its last run tells /readyz that beat is alive.",
        every_seconds=settings.EDGEFLAGS_HOUSEKEEPING_INTERVAL_S,
        run_at_first_beat=True,
    ),
    PeriodicTaskSpec(
        name="purge expired probes",
        task="capability_probe.tasks.purge_expired_probes",
        description="Privacy: delete capability profiles older than the retention.",
        crontab="30 3 * * *",
    ),
    PeriodicTaskSpec(
        name="segmentation",
        task="segments.tasks.run_segmentation",
        description="Cluster capability profiles into segments and publish the new model.",
        crontab="0 2 * * *",
    ),
    PeriodicTaskSpec(
        name="fold telemetry",
        task="telemetry.tasks.fold_telemetry",
        description="Fold buffered client telemetry into the guardrail aggregates.",
        every_seconds=settings.EDGEFLAGS_TELEMETRY_FOLD_INTERVAL_S,
    ),
    PeriodicTaskSpec(
        name="rollout controller",
        task="rollout.tasks.rollout_tick",
        description="Test every ramping segment's guardrails; advance, hold or roll back.",
        every_seconds=60,
    ),
    PeriodicTaskSpec(
        name="drift controller",
        task="rollout.tasks.drift_tick",
        description="Test every on-device model version against its own reference window; "
        "file a retraining request on a sustained decay.",
        every_seconds=settings.EDGEFLAGS_DRIFT_INTERVAL_S,
    ),
    PeriodicTaskSpec(
        name="send retraining webhooks",
        task="rollout.tasks.send_retrain_webhooks",
        description="POST due retraining requests to EDGEFLAGS_RETRAIN_WEBHOOK_URL, with retries.",
        every_seconds=60,
    ),
    PeriodicTaskSpec(
        name="republish snapshots",
        task="rollout.tasks.republish_snapshots",
        description="Republish environments whose last publish failed (see /readyz).",
        every_seconds=settings.EDGEFLAGS_SNAPSHOT_REPAIR_INTERVAL_S,
    ),
    PeriodicTaskSpec(
        name="purge telemetry bookkeeping",
        task="telemetry.tasks.purge_telemetry",
        description="Forget expired event ids (deduplication), per-client failure marks and "
        "guardrail aggregates older than EDGEFLAGS_METRIC_RETENTION_DAYS.",
        crontab="15 * * * *",
    ),
)
