from django.apps import AppConfig


class InteropConfig(AppConfig):
    """Other flag services' exports read into Edgeflags (Unleash's client-features today),
    through the rollout app's models, keeping every client's bucket. No models."""

    name = "interop"
