"""Environments (with their signed-identity actions) and their API keys in the admin; every
change goes through the audited services (access/api_keys.py, access/signed_identities.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from access.api_keys import api_key_create, api_key_revoke
from backoffice.base import AuditedAdmin
from backoffice.signed_identities import IDENTITY_ACTIONS, IdentityAdminMixin
from rollout.audit import Actor
from rollout.models import ApiKey, Environment


@admin.register(Environment)
class EnvironmentAdmin(IdentityAdminMixin, AuditedAdmin):
    list_display = ["key", "name", "created_at"]
    search_fields = ["key", "name"]
    actions = IDENTITY_ACTIONS


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdmin):
    list_display = [
        "prefix",
        "name",
        "environment",
        "scope",
        "created_at",
        "last_used_at",
        "active",
    ]
    list_filter = ["environment", "scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "created_by", "last_used_at", "revoked_at"]
    fields = ["environment", "name", "scope", *readonly_fields]
    actions = ["revoke"]

    @admin.display(boolean=True)
    def active(self, obj: ApiKey) -> bool:
        return obj.is_active

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        if obj is not None:  # a key's environment and scope are fixed once issued
            return ["environment", "scope", *self.readonly_fields]
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created, raw_key = api_key_create(
            environment=obj.environment,
            scope=obj.scope,
            name=obj.name,
            actor=Actor.of(request.user),
            reason="created in the admin",
        )
        obj.pk = created.pk
        messages.warning(
            request, f"New {obj.scope} key (copy it now, it is not shown again): {raw_key}"
        )

    # Only superusers change keys (rollout/roles.py): "change" is theirs alone.
    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.select_related("environment"))
        for api_key in keys:
            api_key_revoke(
                api_key=api_key, actor=Actor.of(request.user), reason="revoked in the admin"
            )
        self.message_user(request, f"Revoked {len(keys)} key(s).")
