"""Routes of the rollout console, under /admin/console/ (admin login, staff only)."""

from django.contrib import admin
from django.urls import URLPattern, path

from rollout.console import audit, flag, overview, segments

urlpatterns: list[URLPattern] = [
    path("", admin.site.admin_view(overview.overview_page), name="console-overview"),
    path("flags/<path:key>", admin.site.admin_view(flag.flag_page), name="console-flag"),
    path("actions", admin.site.admin_view(flag.rollout_action_view), name="console-action"),
    path("segments/", admin.site.admin_view(segments.segments_page), name="console-segments"),
    path(
        "segments/actions",
        admin.site.admin_view(segments.segment_action_view),
        name="console-segment-action",
    ),
    path("audit/", admin.site.admin_view(audit.audit_page), name="console-audit"),
    path("audit.csv", admin.site.admin_view(audit.audit_csv), name="console-audit-csv"),
]
