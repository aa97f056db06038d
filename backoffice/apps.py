from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    """The Django admin for every app's models. No models of its own; nothing imports it."""

    name = "backoffice"
