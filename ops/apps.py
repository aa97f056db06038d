from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_default_schedules(sender: AppConfig, **kwargs: Any) -> None:
    from ops.services import periodic_tasks_ensure

    periodic_tasks_ensure()


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_ensure_default_schedules, sender=self)
