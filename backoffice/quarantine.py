"""The telemetry quarantine in the admin: read-only, with its replay action (superusers)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from backoffice.base import AuditedAdmin
from rollout.audit import Actor
from rollout.models import QuarantinedBatch
from telemetry.aggregates import quarantined_replay


def _superuser(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_superuser)


@admin.register(QuarantinedBatch)
class QuarantinedBatchAdmin(AuditedAdmin):
    """Batches the fold set aside: visible, never edited; deleted (audited) or replayed by a
    superuser."""

    list_display = ["pk", "source", "quarantined_at", "attempts", "error_start"]
    list_filter = ["source"]
    readonly_fields = fields = ("source", "quarantined_at", "attempts", "error", "entry_text")
    actions = ["replay"]

    @admin.display(description="error")
    def error_start(self, obj: QuarantinedBatch) -> str:
        return obj.error[:120]

    @admin.display(description="entry")
    def entry_text(self, obj: QuarantinedBatch) -> str:
        return bytes(obj.entry).decode("utf-8", "backslashreplace").replace("\x00", "\\x00")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _superuser(request)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return _superuser(request)

    @admin.action(
        description="Replay the selected batches into the aggregates", permissions=["replay"]
    )
    def replay(self, request: HttpRequest, queryset: QuerySet[QuarantinedBatch]) -> None:
        if not self.has_replay_permission(request):
            raise PermissionDenied
        actor = Actor.of(request.user)
        results = [quarantined_replay(quarantined=row, actor=actor) for row in queryset]
        done = sum(results)
        level = messages.SUCCESS if done == len(results) else messages.WARNING
        self.message_user(
            request, f"Replayed {done} of {len(results)} batch(es); the rest stay.", level
        )
