"""What every console page's template needs: the admin's own context (header, user tools,
log out) and whether the user may act."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from rollout.roles import can_operate


def page_context(request: HttpRequest, **values: Any) -> dict[str, Any]:
    return {
        **admin.site.each_context(request),
        # The console has its own navigation; the admin's app sidebar would halve a tablet.
        "is_nav_sidebar_enabled": False,
        "can_operate": can_operate(request.user),
        **values,
    }
