from django.contrib import admin
from django.http import HttpRequest

from ops.models import TaskHeartbeat


@admin.register(TaskHeartbeat)
class TaskHeartbeatAdmin(admin.ModelAdmin[TaskHeartbeat]):
    list_display = ["name", "last_finished_at", "last_duration_ms", "runs"]
    readonly_fields = [f.name for f in TaskHeartbeat._meta.fields] + ["runs"]

    # Written by the tasks themselves: what /readyz reads to tell whether beat is alive.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
