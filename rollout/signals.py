"""Any change to what the engine evaluates publishes new snapshot versions on commit.

Signals rather than calls in each service, because flags are also edited in the admin, in
the shell and by importers, and a change that is not published is a change clients never see.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save

from ops.health import register_check
from rollout.models import (
    ApiKey,
    Environment,
    Flag,
    FlagState,
    RolloutPlan,
    Rung,
    Segment,
    TargetingRule,
)
from rollout.rollouts import rollout_segments_sync
from rollout.segment_reach import segment_reach_refresh, segment_reach_refresh_on_commit
from rollout.snapshots.publish import check_snapshot, snapshot_publish_on_commit
from segments.models import CapabilitySegment
from segments.signals import segmentation_published

logger = logging.getLogger(__name__)


def _touched(instance: Any) -> tuple[set[int] | None, set[int], set[int]]:
    """The environments (None = all) a changed row is published in, and the flags and rule
    segments it belongs to (a part of them that cannot be published fails the change)."""
    if isinstance(instance, Environment):
        return {instance.pk}, set(), set()
    if isinstance(instance, ApiKey):
        return {instance.environment_id}, set(), set()
    if isinstance(instance, FlagState):
        return {instance.environment_id}, {instance.flag_id}, set()
    if isinstance(instance, (RolloutPlan, TargetingRule)):
        # Both belong to a flag state; it may be gone already (a cascade delete).
        state_id = (
            instance.flag_state_id if isinstance(instance, RolloutPlan) else instance.state_id
        )
        state = FlagState.objects.filter(pk=state_id).values("environment_id", "flag_id").first()
        if state is None:
            return set(), set(), set()
        return {state["environment_id"]}, {state["flag_id"]}, set()
    # Flags, rungs and segments are shared by every environment.
    if isinstance(instance, Flag):
        return None, {instance.pk}, set()
    if isinstance(instance, Rung):
        return None, {instance.flag_id}, set()
    if isinstance(instance, Segment):
        return None, set(), {instance.pk}
    return None, set(), set()


def _changed(sender: type[models.Model], instance: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return  # loaddata: fixtures publish nothing until the data is complete
    if isinstance(instance, Environment) and kwargs.get("signal") is post_delete:
        return  # its snapshots went with it
    environments, flag_ids, segment_ids = _touched(instance)
    if environments == set():
        return
    if isinstance(instance, (Flag, Rung)):
        segment_reach_refresh_on_commit()  # requirements or the estimate confidence changed
    label = f"{sender._meta.verbose_name} {instance}"
    snapshot_publish_on_commit(
        environment_ids=environments,
        reason=f"changed {label}",
        flag_ids=flag_ids,
        segment_ids=segment_ids,
        deletion=kwargs.get("signal") is post_delete,
    )


def _segments_changed(
    sender: type[models.Model], instance: Any, action: str, **kwargs: Any
) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        _changed(TargetingRule, instance)


def _segmentation_published(sender: Any, version: int, **kwargs: Any) -> None:
    # A segment that appears in this run joins every rollout that covers it, pending.
    rollout_segments_sync()
    snapshot_publish_on_commit(environment_ids=None, reason=f"segmentation model v{version}")
    try:
        # In the run's own process, so that the segments page shows the new segments' reach
        # as soon as they exist; a failure costs the figures, not the published run.
        segment_reach_refresh()
    except Exception:
        logger.exception("segment reach after segmentation model v%s failed", version)


def connect() -> None:
    """Connect the publishing signals and the snapshot health check (once, from the app
    config)."""
    # ops may not import rollout: rollout hands /readyz its check.
    register_check("snapshot", check_snapshot, required=False)
    segmentation_published.connect(_segmentation_published, dispatch_uid="publish-segmentation")
    for model in (
        Environment,
        ApiKey,
        Flag,
        FlagState,
        Segment,
        TargetingRule,
        Rung,
        CapabilitySegment,
        RolloutPlan,
    ):
        post_save.connect(_changed, sender=model, dispatch_uid=f"publish-save-{model.__name__}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"publish-delete-{model.__name__}")
    m2m_changed.connect(
        _segments_changed, sender=TargetingRule.segments.through, dispatch_uid="publish-m2m"
    )
