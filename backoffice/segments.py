"""Learned segments, segmentation models and runs in the admin, with "Run now".

Every change here goes through the review service (rollout/segment_review.py), which also
updates the rollout side and writes the audit log.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse

from backoffice.base import AuditedAdmin
from rollout.audit import Actor
from rollout.roles import may
from rollout.segment_review import ReviewRequest, segment_review, segmentation_queue
from segments.models import CapabilitySegment, SegmentationModel, SegmentationRun
from segments.services import SegmentError


@admin.register(CapabilitySegment)
class CapabilitySegmentAdmin(AuditedAdmin):
    list_display = ["key", "label", "identity", "status", "size", "share_percent", "updated_at"]
    list_filter = ["status"]
    search_fields = ["key", "label"]
    # Learned segments are changed only by the review (accept here; rename and merge on the
    # console's Segments page): a key edited in this form would leave its rollout rows behind.
    readonly_fields = [
        "key",
        "label",
        "status",
        "identity",
        "size",
        "share",
        "centroid",
        "first_run",
        "last_run",
    ]
    fields = tuple(readonly_fields)
    actions = ["accept"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # segments are learned by the segmentation job

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a segment retires or merges; its key stays reserved

    @admin.display(description="share")
    def share_percent(self, obj: CapabilitySegment) -> str:
        return f"{obj.share * 100:.1f} %"

    @admin.action(description="Accept the selected new segments", permissions=["change"])
    def accept(self, request: HttpRequest, queryset: QuerySet[CapabilitySegment]) -> None:
        actor = Actor.of(request.user)
        accepted = 0
        for key in queryset.filter(status=CapabilitySegment.Status.REVIEW).values_list(
            "key", flat=True
        ):
            try:
                segment_review(
                    actor=actor,
                    request=ReviewRequest(action="accept", segment=key, reason="admin action"),
                )
                accepted += 1
            except SegmentError as exc:
                self.message_user(request, f"{key}: {exc.message}", level=messages.ERROR)
        self.message_user(request, f"Accepted {accepted} segment(s).")


@admin.register(SegmentationRun)
class SegmentationRunAdmin(AuditedAdmin):
    list_display = ["pk", "status", "trigger", "started_at", "rows", "k", "silhouette", "total_s"]
    list_filter = ["status", "trigger"]
    readonly_fields = [f.name for f in SegmentationRun._meta.fields]
    change_list_template = "admin/segments/segmentationrun/change_list.html"

    @admin.display(description="seconds")
    def total_s(self, obj: SegmentationRun) -> Any:
        return obj.timings.get("total")

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # runs are queued with "Run now", never typed in

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # runs are the history drift and the console's charts are read from

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        context = {**(extra_context or {}), "can_run_now": self.may_run_now(request)}
        return super().changelist_view(request, context)

    def get_urls(self) -> list[Any]:
        run_now = path(
            "run-now/",
            self.admin_site.admin_view(self.run_now),
            name="segments_segmentationrun_run_now",
        )
        return [run_now, *super().get_urls()]

    # The custom views' permission, declared for the test that walks every admin view.
    view_permissions = {"run_now": ("add", "segments.segmentationrun")}

    def may_run_now(self, request: HttpRequest) -> bool:
        return may(request.user, *self.view_permissions["run_now"])

    def run_now(self, request: HttpRequest) -> HttpResponse:
        """Queue a segmentation run on the workers (POST only: it changes state)."""
        if not self.may_run_now(request):
            raise PermissionDenied("Run now needs the release manager role")
        if request.method == "POST":
            segmentation_queue(actor=Actor.of(request.user), reason="run now (admin)")
            messages.success(request, "Segmentation queued; it appears here when it starts.")
        return HttpResponseRedirect(reverse("admin:segments_segmentationrun_changelist"))


@admin.register(SegmentationModel)
class SegmentationModelAdmin(AuditedAdmin):
    list_display = ["version", "is_current", "run", "created_at"]
    readonly_fields = ["version", "artifact", "run", "is_current", "created_at"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # published models are what snapshots and drift refer to
