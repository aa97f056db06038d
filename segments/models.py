"""Capability segments learned from profiles, the models that define them, and their runs."""

from __future__ import annotations

from django.db import models


class SegmentationRun(models.Model):
    """One run of the segmentation job: what it read, chose, published and measured."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=20, help_text="schedule, admin, command or demo")
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seed = models.IntegerField(default=0)
    rows = models.PositiveIntegerField(null=True, blank=True)
    sampled = models.PositiveIntegerField(null=True, blank=True)
    k = models.PositiveSmallIntegerField(null=True, blank=True)
    silhouette = models.FloatField(null=True, blank=True)
    calinski_harabasz = models.FloatField(null=True, blank=True)
    stability = models.FloatField(null=True, blank=True)
    sizes = models.JSONField(default=dict, blank=True, help_text="segment key -> clients")
    centroids = models.JSONField(
        default=dict, blank=True, help_text="segment key -> profile in raw units"
    )
    drift = models.JSONField(default=dict, blank=True)
    feature_bins = models.JSONField(
        default=dict, blank=True, help_text="decile edges and shares, the next run's reference"
    )
    timings = models.JSONField(default=dict, blank=True, help_text="seconds per phase")
    model_version = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"segmentation run {self.pk} ({self.status})"


class SegmentationModel(models.Model):
    """A published model: feature spec, scaler, centroids and segment keys (versioned)."""

    version = models.PositiveIntegerField(unique=True)
    artifact = models.JSONField()
    run = models.OneToOneField(SegmentationRun, on_delete=models.PROTECT, related_name="model")
    is_current = models.BooleanField(default=False, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"segmentation model v{self.version}"


class CapabilitySegment(models.Model):
    """A learned segment with a stable identity: key, label and rollout state survive re-runs."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        REVIEW = "review", "new: needs review"
        RETIRED = "retired"

    identity = models.PositiveIntegerField(unique=True)
    key = models.SlugField(max_length=100, unique=True, help_text="What rules and rollouts use.")
    label = models.CharField(max_length=100, help_text="Readable name, derived from the centroid.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    size = models.PositiveIntegerField(default=0)
    share = models.FloatField(default=0.0)
    centroid = models.JSONField(default=dict, blank=True, help_text="Profile in raw units.")
    # Of a sample of the segment's clients, how many can run each rung of each ladder flag
    # (rollout/engine/reach.py): {"clients": n, "flags": {flag: [[rung, n], ...]},
    # "sampled": n of all segments, "at": ISO time}; written by rollout after every
    # segmentation run and ladder change.
    reach = models.JSONField(default=dict, blank=True, help_text="Clients able to run each rung.")
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="merged",
        help_text="Retired into this segment: its clients get this segment's key.",
    )
    first_run = models.ForeignKey(
        SegmentationRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_run = models.ForeignKey(
        SegmentationRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["identity"]

    def __str__(self) -> str:
        return self.key


class SegmentationLock(models.Model):
    """A single row locked while a run starts, so that two runs never overlap."""

    name = models.CharField(max_length=20, primary_key=True)

    def __str__(self) -> str:
        return self.name
