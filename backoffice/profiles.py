"""Profiles in the admin: searchable by segment and hashed id, never by a raw client id."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from capability_probe.models import ClientProfile


@admin.register(ClientProfile)
class ClientProfileAdmin(admin.ModelAdmin[ClientProfile]):
    list_display = [
        "short_hash",
        "environment_id",
        "segment_key",
        "memory_gb",
        "cores",
        "webgpu",
        "benchmark_ms",
        "rtt_ms",
        "effective_type",
        "os",
        "browser",
        "received_at",
    ]
    # environment_id: which environment's keys stored the row (empty: synthetic or legacy)
    list_filter = [
        "environment_id",
        "segment_key",
        "effective_type",
        "webgpu",
        "save_data",
        "os",
        "browser",
    ]
    search_fields = ["client_hash", "segment_key"]
    date_hierarchy = "received_at"
    show_full_result_count = False  # counting a million rows on every page is slow
    readonly_fields = [f.name for f in ClientProfile._meta.fields]

    @admin.display(description="client (hashed)", ordering="client_hash")
    def short_hash(self, obj: ClientProfile) -> str:
        return f"{obj.client_hash[:16]}…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # erasure goes through the privacy API and `erase_client`
