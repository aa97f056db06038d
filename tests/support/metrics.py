"""Reading Prometheus samples in tests: in-process (ops.metrics.render) or from a scrape."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from ops import metrics


def scrape() -> str:
    """What /metrics would answer now, from this process and every other sharing its dir."""
    return metrics.render().decode()


def series(text: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Samples called `name` whose labels include `labels`, as (labels, value)."""
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]


def total(text: str, name: str, **labels: str) -> float:
    """The sum of those samples (0 when there is none)."""
    return sum(value for _, value in series(text, name, **labels))
