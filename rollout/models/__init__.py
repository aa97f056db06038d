"""The rollout app's models, one module per concern (Django loads them from here)."""

from rollout.models.audit import AuditEntry
from rollout.models.drift import DriftWatch, RetrainingRequest, WebhookDelivery
from rollout.models.edge_models import ModelVersion
from rollout.models.flags import (
    FLAG_KEY_VALIDATOR,
    KIND_TYPES,
    SLUG_VALIDATOR,
    ApiKey,
    Environment,
    Flag,
    FlagState,
    PublishFailure,
    Rung,
    Segment,
    SnapshotVersion,
    TargetingRule,
)
from rollout.models.rollouts import RolloutPlan, SegmentRollout
from rollout.models.telemetry import (
    FailureMark,
    MetricBucket,
    QuarantinedBatch,
    SeenEvent,
    TelemetryBatch,
    TelemetryCursor,
)

__all__ = [
    "FLAG_KEY_VALIDATOR",
    "KIND_TYPES",
    "SLUG_VALIDATOR",
    "ApiKey",
    "AuditEntry",
    "DriftWatch",
    "Environment",
    "FailureMark",
    "Flag",
    "FlagState",
    "MetricBucket",
    "ModelVersion",
    "PublishFailure",
    "QuarantinedBatch",
    "RetrainingRequest",
    "RolloutPlan",
    "Rung",
    "SeenEvent",
    "Segment",
    "SegmentRollout",
    "SnapshotVersion",
    "TargetingRule",
    "TelemetryBatch",
    "TelemetryCursor",
    "WebhookDelivery",
]
