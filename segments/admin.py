"""Segments, models and runs in the admin, with "Run now"."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse

from segments.models import CapabilitySegment, SegmentationModel, SegmentationRun
from segments.tasks import run_segmentation


@admin.register(CapabilitySegment)
class CapabilitySegmentAdmin(admin.ModelAdmin[CapabilitySegment]):
    list_display = ["key", "label", "identity", "status", "size", "share_percent", "updated_at"]
    list_filter = ["status"]
    search_fields = ["key", "label"]
    readonly_fields = ["identity", "size", "share", "centroid", "first_run", "last_run"]
    fields = ["key", "label", "status", *readonly_fields]
    actions = ["accept"]

    @admin.display(description="share")
    def share_percent(self, obj: CapabilitySegment) -> str:
        return f"{obj.share * 100:.1f} %"

    @admin.action(description="Accept the selected new segments")
    def accept(self, request: HttpRequest, queryset: QuerySet[CapabilitySegment]) -> None:
        count = queryset.filter(status=CapabilitySegment.Status.REVIEW).update(
            status=CapabilitySegment.Status.ACTIVE
        )
        self.message_user(request, f"Accepted {count} segment(s).")


@admin.register(SegmentationRun)
class SegmentationRunAdmin(admin.ModelAdmin[SegmentationRun]):
    list_display = ["pk", "status", "trigger", "started_at", "rows", "k", "silhouette", "total_s"]
    list_filter = ["status", "trigger"]
    readonly_fields = [f.name for f in SegmentationRun._meta.fields]
    change_list_template = "admin/segments/segmentationrun/change_list.html"

    @admin.display(description="seconds")
    def total_s(self, obj: SegmentationRun) -> Any:
        return obj.timings.get("total")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        run_now = path(
            "run-now/",
            self.admin_site.admin_view(self.run_now),
            name="segments_segmentationrun_run_now",
        )
        return [run_now, *super().get_urls()]

    def run_now(self, request: HttpRequest) -> HttpResponse:
        """Queue a segmentation run on the workers (POST only: it changes state)."""
        if request.method == "POST":
            run_segmentation.delay(trigger="admin")
            messages.success(request, "Segmentation queued; it appears here when it starts.")
        return HttpResponseRedirect(reverse("admin:segments_segmentationrun_changelist"))


@admin.register(SegmentationModel)
class SegmentationModelAdmin(admin.ModelAdmin[SegmentationModel]):
    list_display = ["version", "is_current", "run", "created_at"]
    readonly_fields = ["version", "artifact", "run", "is_current", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
