from django.apps import AppConfig


class CapabilityProbeConfig(AppConfig):
    name = "capability_probe"
    default_auto_field = "django.db.models.BigAutoField"
