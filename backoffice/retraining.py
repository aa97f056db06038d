"""Drift watches, retraining requests and their webhook deliveries in the admin: read-only
records, with the actions their services offer (resolve a request, send a delivery again)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from backoffice.base import AuditedAdmin
from rollout.audit import Actor
from rollout.models import DriftWatch, RetrainingRequest, WebhookDelivery
from rollout.retraining import retrain_request_resolve, webhook_delivery_retry


class ReadOnly:
    """Rows written by the controller and the services only."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DriftWatch)
class DriftWatchAdmin(ReadOnly, AuditedAdmin):
    list_display = ["flag", "model_version", "segment_identity", "environment", "status",
                    "epoch", "last_checked_at"]  # fmt: skip
    list_filter = ["status", "environment", "flag"]


DELIVERY_FIELDS = (
    "state",
    "attempts",
    "last_status",
    "last_error",
    "next_attempt_at",
    "delivered_at",
)


class DeliveryInline(admin.TabularInline[WebhookDelivery, RetrainingRequest]):
    model = WebhookDelivery
    extra = 0
    fields = DELIVERY_FIELDS
    readonly_fields = DELIVERY_FIELDS
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RetrainingRequest)
class RetrainingRequestAdmin(ReadOnly, AuditedAdmin):
    list_display = ["__str__", "environment", "metric", "source", "filed_by", "filed_at",
                    "resolved_at"]  # fmt: skip
    list_filter = ["environment", "flag", "source", "metric"]
    inlines = [DeliveryInline]
    actions = ["resolve"]

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        from rollout.roles import may

        return may(request.user, "change", "rollout.retrainingrequest")

    @admin.action(
        description="Mark resolved (the watch starts a new window)", permissions=["resolve"]
    )
    def resolve(self, request: HttpRequest, queryset: QuerySet[RetrainingRequest]) -> None:
        for row in queryset.select_related("environment"):
            retrain_request_resolve(request=row, actor=Actor.of(request.user))
        self.message_user(request, f"{queryset.count()} request(s) resolved.")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnly, AuditedAdmin):
    list_display = ["__str__", "state", "attempts", "last_status", "next_attempt_at",
                    "delivered_at"]  # fmt: skip
    list_filter = ["state"]
    readonly_fields = ["request", "url", "state", "attempts", "last_status", "last_error",
                       "next_attempt_at", "delivered_at", "created_at", "body_text"]  # fmt: skip
    exclude = ["body"]
    actions = ["retry"]

    @admin.display(description="body (as signed and sent)")
    def body_text(self, obj: WebhookDelivery) -> str:
        return bytes(obj.body).decode("utf-8", "replace")

    def has_retry_permission(self, request: HttpRequest) -> bool:
        from rollout.roles import may

        return may(request.user, "change", "rollout.webhookdelivery")

    @admin.action(description="Send again now (attempts counted anew)", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        for row in queryset.select_related("request__environment"):
            webhook_delivery_retry(delivery=row, actor=Actor.of(request.user))
        self.message_user(request, f"{queryset.count()} delivery(ies) queued.", messages.SUCCESS)
