from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Capability segments"
    default_auto_field = "django.db.models.BigAutoField"
