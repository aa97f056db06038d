"""Telemetry: the aggregates guardrails read, and the bookkeeping that makes intake exact.

No raw event is kept: a batch waits in the buffer (Redis, or TelemetryBatch without Redis)
until the fold task adds it to MetricBucket rows and forgets it.
"""

from __future__ import annotations

from django.db import models

from rollout.models.flags import Environment


class MetricBucket(models.Model):
    """Aggregates per (environment, flag, segment, arm, rung, model version, minute).

    `segment_identity` and `arm` are the ones the server served the client (treatment or
    control, as its decision token records them; a client's own claim is never used). The
    segment is kept by its stable identity, so a renamed segment keeps its evidence. Per metric:
    n (client reports), sum and sum of squares of the per-client values the guardrails test;
    failures are clients that crashed or errored, at most one per client, flag and hour.
    """

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    flag = models.CharField(max_length=200)
    segment_identity = models.PositiveIntegerField(help_text="The capability segment's identity.")
    arm = models.CharField(max_length=10, help_text="treatment, control, or none.")
    # The rung and on-device model version served, as the decision token records them ("":
    # a plain flag, or counted before tokens carried them).
    rung = models.CharField(max_length=40, default="", blank=True)
    model_version = models.CharField(max_length=40, default="", blank=True)
    minute = models.DateTimeField()
    exposures = models.BigIntegerField(default=0, help_text="Counted by the server.")
    client_exposures = models.BigIntegerField(default=0, help_text="Reported by clients.")
    clients = models.IntegerField(default=0, help_text="Client reports (one per batch).")
    failures = models.IntegerField(default=0)
    latency_n = models.IntegerField(default=0)
    latency_sum = models.FloatField(default=0.0)
    latency_sumsq = models.FloatField(default=0.0)
    inference_ms_n = models.IntegerField(default=0)
    inference_ms_sum = models.FloatField(default=0.0)
    # Inference times by bin (telemetry.fold.INFERENCE_EDGES_MS: ≤2, ≤5, ≤10, ≤20, ≤50, ≤100,
    # ≤200, ≤500, ≤1000, ≤2000, ≤5000 ms, and beyond), for p50 and p95.
    inference_hist_00 = models.IntegerField(default=0)
    inference_hist_01 = models.IntegerField(default=0)
    inference_hist_02 = models.IntegerField(default=0)
    inference_hist_03 = models.IntegerField(default=0)
    inference_hist_04 = models.IntegerField(default=0)
    inference_hist_05 = models.IntegerField(default=0)
    inference_hist_06 = models.IntegerField(default=0)
    inference_hist_07 = models.IntegerField(default=0)
    inference_hist_08 = models.IntegerField(default=0)
    inference_hist_09 = models.IntegerField(default=0)
    inference_hist_10 = models.IntegerField(default=0)
    inference_hist_11 = models.IntegerField(default=0)
    energy_n = models.IntegerField(default=0)
    energy_sum = models.FloatField(default=0.0)
    energy_sumsq = models.FloatField(default=0.0)
    rating_n = models.IntegerField(default=0)
    rating_sum = models.FloatField(default=0.0)
    rating_sumsq = models.FloatField(default=0.0)
    # On-device quality (docs/edge-models.md): per-client acceptance rates of suggestions and
    # mean freshness hours, and model downloads counted as reported.
    acceptance_n = models.IntegerField(default=0)
    acceptance_sum = models.FloatField(default=0.0)
    acceptance_sumsq = models.FloatField(default=0.0)
    freshness_n = models.IntegerField(default=0)
    freshness_sum = models.FloatField(default=0.0)
    freshness_sumsq = models.FloatField(default=0.0)
    updates_full = models.IntegerField(default=0)
    updates_full_failed = models.IntegerField(default=0)
    updates_delta = models.IntegerField(default=0)
    updates_delta_failed = models.IntegerField(default=0)
    update_bytes_full = models.BigIntegerField(default=0)
    update_bytes_delta = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "environment",
                    "flag",
                    "segment_identity",
                    "arm",
                    "rung",
                    "model_version",
                    "minute",
                ],
                name="one_bucket_per_minute",
            )
        ]
        indexes = [
            models.Index(
                fields=["environment", "flag", "segment_identity", "minute"], name="bucket_lookup"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.flag}/segment {self.segment_identity}/{self.arm} @ {self.minute:%Y-%m-%d %H:%M}"
        )


class TelemetryBatch(models.Model):
    """A client batch waiting to be folded (the buffer when there is no Redis)."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    received_at = models.DateTimeField()
    payload = models.JSONField()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"telemetry batch {self.pk} received {self.received_at:%Y-%m-%d %H:%M:%S}"


class TelemetryCursor(models.Model):
    """The sequence number of the last Redis buffer entry folded into the aggregates.

    Updated in the same transaction as the aggregates, so a fold that dies after its
    commit but before trimming the buffer skips those entries next time."""

    name = models.CharField(max_length=40, primary_key=True)
    position = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} at {self.position}"


class SeenEvent(models.Model):
    """Event ids already accepted (deduplication when there is no Redis), kept 48 h."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=64)
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["environment", "event_id"], name="event_seen_once")
        ]

    def __str__(self) -> str:
        return f"event {self.event_id}"


class FailureMark(models.Model):
    """A client already counted as failed for a flag in an hour (the per-client cap)."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    flag = models.CharField(max_length=200)
    client = models.CharField(max_length=64, help_text="Keyed hash of the targeting key.")
    window = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "flag", "client", "window"], name="one_failure_per_window"
            )
        ]

    def __str__(self) -> str:
        return f"{self.flag} failure of {self.client[:8]}… in {self.window:%Y-%m-%d %H:00}"


class QuarantinedBatch(models.Model):
    """A buffered batch the fold could not apply (the database refused it, or it is not a
    batch at all), set aside so that the fold goes on; kept until replayed or deleted.

    The entry is kept as the exact bytes buffered: whatever made the database refuse it
    (a NUL in a string, say) would make a text or JSON column refuse it too."""

    class Source(models.TextChoices):
        REDIS = "redis", "Redis buffer"
        DATABASE = "database", "database buffer"

    source = models.CharField(max_length=10, choices=Source.choices)
    entry = models.BinaryField(help_text="The buffered entry, as stored.")
    error = models.TextField(help_text="Why the fold could not apply it.")
    quarantined_at = models.DateTimeField(db_index=True)
    attempts = models.IntegerField(default=1, help_text="Folds and replays that failed.")

    class Meta:
        ordering = ["-quarantined_at"]

    def __str__(self) -> str:
        return f"quarantined batch {self.pk} ({self.source}, {self.quarantined_at:%Y-%m-%d %H:%M})"
