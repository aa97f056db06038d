"""The audit log: who or what changed what, when, why, from what to what, on what evidence."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """One change. Rows are only ever added (the admin shows them read-only)."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Kept as text too, so the entry survives the user's deletion; "controller" for automatic
    # decisions, "cli" for the command line.
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=40, db_index=True)
    environment = models.CharField(max_length=63, blank=True, db_index=True)
    flag = models.CharField(max_length=200, blank=True, db_index=True)
    segment = models.CharField(max_length=63, blank=True)  # the key at the time
    # The segment's stable identity, so that a segment's history survives its renames.
    segment_identity = models.PositiveIntegerField(null=True, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        where = "/".join(part for part in (self.flag, self.environment, self.segment) if part)
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {where}"
