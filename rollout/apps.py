from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_roles(sender: AppConfig, **kwargs: Any) -> None:
    from rollout.roles import roles_ensure

    roles_ensure()


class RolloutConfig(AppConfig):
    name = "rollout"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from rollout import signals

        signals.connect()
        # After every app's migrations: each app's permissions exist once its own ran.
        post_migrate.connect(_ensure_roles, dispatch_uid="edgeflags-roles")
