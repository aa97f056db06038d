from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The rollout console: admin pages for release managers. No models: it draws what the
    apps' selectors hand it and changes state only through their services."""

    name = "console"
