from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    """Event intake, the durable buffer, the fold into aggregates and exposure counts.

    No models of its own: the aggregates it writes (MetricBucket, TelemetryBatch, …) are
    rollout's, because the guardrails read them.
    """

    name = "telemetry"
