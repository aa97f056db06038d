"""Who may use the management API: staff read; release managers and superusers change."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from rollout.roles import can_operate, can_view


class ReadOrOperate(BasePermission):
    """Staff may read; only release managers and superusers may change anything."""

    message = "Viewers can look but not change: this needs the release manager role."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return can_view(request.user)
        return can_operate(request.user)
