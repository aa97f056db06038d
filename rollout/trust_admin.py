"""Admin for the trust boundary's own pieces: the identity-secret action on environments and
the read-only telemetry quarantine with its replay action.

Kept apart from `rollout.admin`'s classes so that they stay self-contained: the environment
action is a plain function its ModelAdmin lists, with the permission it declares.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from ops.errors import DomainError
from rollout.admin_base import AuditedAdmin
from rollout.audit import Actor
from rollout.models import Environment, QuarantinedBatch
from rollout.signed_identities import (
    environment_identity_secret_rotate,
    environment_signed_identities_require,
)
from rollout.telemetry.aggregates import quarantined_replay


def _superuser(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_superuser)


@admin.action(
    description="Generate a new identity secret (shown once; the old one stops working)",
    permissions=["manage_identities"],
)
def identity_secret_rotate(
    modeladmin: admin.ModelAdmin[Environment], request: HttpRequest, queryset: QuerySet[Environment]
) -> None:
    if not _superuser(request):
        raise PermissionDenied
    for environment in queryset:
        secret = environment_identity_secret_rotate(
            environment=environment, actor=Actor.of(request.user)
        )
        messages.warning(
            request,
            f"Identity secret of {environment.key} (copy it to your backend now, it is not "
            f"shown again): {secret}",
        )


def _require(required: bool) -> Any:
    def run(
        modeladmin: admin.ModelAdmin[Environment],
        request: HttpRequest,
        queryset: QuerySet[Environment],
    ) -> None:
        if not _superuser(request):
            raise PermissionDenied
        for environment in queryset:
            try:
                environment_signed_identities_require(
                    environment=environment, required=required, actor=Actor.of(request.user)
                )
            except DomainError as exc:
                messages.error(request, f"{environment.key}: {exc}")

    run.__name__ = "signed_identities_" + ("require" if required else "allow_unsigned")
    return run


signed_identities_require = admin.action(
    description="Require signed identities (only they count in guardrails, store profiles)",
    permissions=["manage_identities"],
)(_require(True))
signed_identities_allow_unsigned = admin.action(
    description="Stop requiring signed identities",
    permissions=["manage_identities"],
)(_require(False))
IDENTITY_ACTIONS = [
    identity_secret_rotate,
    signed_identities_require,
    signed_identities_allow_unsigned,
]


class IdentityAdminMixin:
    """Gives an Environment ModelAdmin the permission its IDENTITY_ACTIONS declare."""

    def has_manage_identities_permission(self, request: HttpRequest) -> bool:
        return _superuser(request)


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
