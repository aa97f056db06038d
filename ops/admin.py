from django.contrib import admin
from django.http import HttpRequest

from ops.models import TaskHeartbeat


@admin.register(TaskHeartbeat)
class TaskHeartbeatAdmin(admin.ModelAdmin[TaskHeartbeat]):
    list_display = ["name", "last_finished_at", "last_duration_ms", "runs"]
    readonly_fields = [f.name for f in TaskHeartbeat._meta.fields] + ["runs"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
