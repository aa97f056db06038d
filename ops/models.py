"""Operational records: when each periodic task last ran, so health checks can see beat."""

from django.db import models


class TaskHeartbeat(models.Model):
    """The latest run of one named periodic task (one row per task name)."""

    name = models.CharField(max_length=100, primary_key=True)
    last_started_at = models.DateTimeField()
    last_finished_at = models.DateTimeField()
    last_duration_ms = models.PositiveIntegerField()
    last_detail = models.JSONField(default=dict, blank=True)
    runs = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_finished_at:%Y-%m-%d %H:%M:%S}"
