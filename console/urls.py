"""Routes of the rollout console, under /admin/console/ (admin login, staff only).

Pages only read (GET or HEAD; anything else is a 405), so the two action routes, POST only
and role-checked, are the console's only doors to a change."""

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.urls import URLPattern, path
from django.views.decorators.http import require_safe

from console import audit, flag, model_health, overview, segments


def _page(view: Callable[..., Any]) -> Callable[..., Any]:
    return admin.site.admin_view(require_safe(view))


urlpatterns: list[URLPattern] = [
    path("", _page(overview.overview_page), name="console-overview"),
    path("flags/<path:key>", _page(flag.flag_page), name="console-flag"),
    path("models/<path:key>", _page(model_health.model_health_page), name="console-models"),
    path("actions", admin.site.admin_view(flag.rollout_action_view), name="console-action"),
    path("segments/", _page(segments.segments_page), name="console-segments"),
    path(
        "segments/actions",
        admin.site.admin_view(segments.segment_action_view),
        name="console-segment-action",
    ),
    path("audit/", _page(audit.audit_page), name="console-audit"),
    path("audit.csv", _page(audit.audit_csv), name="console-audit-csv"),
]
