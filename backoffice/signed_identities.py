"""The environment's signed-identity actions in the admin (rotate the secret, require or
allow unsigned identities): plain functions the EnvironmentAdmin lists, each with the
permission it declares. Superusers only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from access.signed_identities import (
    environment_identity_secret_rotate,
    environment_signed_identities_require,
)
from ops.errors import DomainError
from rollout.audit import Actor
from rollout.models import Environment


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
