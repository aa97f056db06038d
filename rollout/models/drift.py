"""Drift of on-device models: what each (segment, version) is compared with, the retraining
requests filed on a sustained decay (or by hand), and their webhook deliveries."""

from __future__ import annotations

from django.db import models

from rollout.models.fields import TEXT_INPUT
from rollout.models.flags import Environment


class DriftWatch(models.Model):
    """One model version in one segment of one environment, watched for drift
    (rollout/guardrails/drift.py): its frozen reference window and where the watch stands."""

    class Status(models.TextChoices):
        COLLECTING = "collecting", "collecting the reference window"
        WATCHING = "watching"
        TRIGGERED = "triggered", "retraining requested"

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    flag = models.CharField(max_length=200)
    segment_identity = models.PositiveIntegerField()
    model_version = models.CharField(max_length=40)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.COLLECTING)
    reference_start = models.DateTimeField(help_text="The version's first data in the segment.")
    reference_end = models.DateTimeField(null=True, blank=True)
    # Per metric {n, total, totalSquares}: frozen when the reference window closes.
    reference = models.JSONField(default=dict, blank=True)
    epoch = models.PositiveIntegerField(default=1, help_text="The current window's number.")
    epoch_start = models.DateTimeField(null=True, blank=True)
    last_verdict = models.JSONField(default=dict, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["environment", "flag", "segment_identity", "model_version"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "flag", "segment_identity", "model_version"],
                name="one_watch_per_version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.flag} {self.model_version} in segment {self.segment_identity}"


class RetrainingRequest(models.Model):
    """A request to retrain a model version, with its evidence. It never changes what clients
    are served: the team that owns the model acts on it (its webhook, the console)."""

    class Source(models.TextChoices):
        DRIFT = "drift", "drift controller"
        PERSON = "person", "filed by hand"

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    flag = models.CharField(max_length=200)
    segment_identity = models.PositiveIntegerField()
    segment_key = models.CharField(max_length=100, help_text="The segment's key when filed.")
    model_version = models.CharField(max_length=40, blank=True)
    metric = models.CharField(max_length=20, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    reason = models.TextField(validators=[TEXT_INPUT])
    evidence = models.JSONField(default=dict, blank=True)
    filed_by = models.CharField(max_length=150)
    filed_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-filed_at", "-pk"]
        indexes = [models.Index(fields=["environment", "flag", "resolved_at"], name="retrain_open")]

    def __str__(self) -> str:
        return f"retrain {self.flag} {self.model_version} for {self.segment_key}"


class WebhookDelivery(models.Model):
    """One POST of a retraining request to EDGEFLAGS_RETRAIN_WEBHOOK_URL: the exact signed
    body, every attempt counted, retried with backoff until delivered or given up."""

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed", "failed (gave up)"

    request = models.ForeignKey(
        RetrainingRequest, on_delete=models.CASCADE, related_name="deliveries"
    )
    url = models.CharField(max_length=2000)
    body = models.BinaryField(help_text="The JSON body, as signed and sent.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"delivery {self.pk} of {self.request} ({self.state})"
