"""Profiles in the admin: searchable by hashed id and segment key, never by a raw client id."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from capability_probe.models import ClientProfile
from segments.selectors import profiles_with_segment_keys, segment_identity_of, segment_list


class SegmentFilter(admin.SimpleListFilter):
    """By the segment's current key; the profile holds its identity."""

    title = "segment"
    parameter_name = "segment"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(s.identity), s.key) for s in segment_list()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return (
            queryset.filter(segment_identity=int(value)) if value and value.isdigit() else queryset
        )


@admin.register(ClientProfile)
class ClientProfileAdmin(admin.ModelAdmin[ClientProfile]):
    list_display = [
        "short_hash",
        "environment_id",
        "segment",
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
        SegmentFilter,
        "effective_type",
        "webgpu",
        "save_data",
        "os",
        "browser",
    ]
    search_fields = ["client_hash"]
    search_help_text = "A hashed client id (or its start), or a segment key."
    date_hierarchy = "received_at"
    show_full_result_count = False  # counting a million rows on every page is slow
    readonly_fields = [f.name for f in ClientProfile._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ClientProfile]:
        return profiles_with_segment_keys(super().get_queryset(request))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ClientProfile], search_term: str
    ) -> tuple[QuerySet[ClientProfile], bool]:
        identity = segment_identity_of(search_term.strip()) if search_term.strip() else None
        if identity is not None:
            return queryset.filter(segment_identity=identity), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="client (hashed)", ordering="client_hash")
    def short_hash(self, obj: ClientProfile) -> str:
        return f"{obj.client_hash[:16]}…"

    @admin.display(description="segment", ordering="segment_key")
    def segment(self, obj: ClientProfile) -> str:
        return getattr(obj, "segment_key", None) or "–"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # erasure goes through the privacy API and `erase_client`
