from django.apps import AppConfig


class CapabilityProbeConfig(AppConfig):
    name = "capability_probe"
    verbose_name = "Capability probes"
    default_auto_field = "django.db.models.BigAutoField"
