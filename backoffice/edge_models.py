"""On-device model versions in the admin: registered through the audited service, never
edited (a new artifact is a new version), deleted only while no environment serves them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.forms import ModelForm
from django.http import HttpRequest

from backoffice.base import AuditedAdmin
from rollout.audit import Actor
from rollout.edge_models import REGISTERED_FIELDS, model_version_register
from rollout.models import ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(AuditedAdmin):
    list_display = ["__str__", "flag", "rung", "format", "size_bytes", "served_in", "created_at"]
    list_filter = ["flag", "format"]
    search_fields = ["flag__key", "name", "version"]
    list_select_related = ["flag"]
    fields = ["flag", *REGISTERED_FIELDS]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("serving_states__environment")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # registered once: the change page shows it read-only

    @admin.display(description="served in")
    def served_in(self, obj: ModelVersion) -> str:
        return ", ".join(sorted(s.environment.key for s in obj.serving_states.all())) or "—"

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:  # type: ignore[type-arg]
        registered = model_version_register(
            flag=obj.flag,
            actor=Actor.of(request.user),
            reason="registered in the admin",
            **{name: getattr(obj, name) for name in REGISTERED_FIELDS},
        )
        obj.pk = registered.pk
        obj._state.adding = False
