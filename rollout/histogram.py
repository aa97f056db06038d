"""The inference-time histogram the telemetry fold counts into MetricBucket's
inference_hist_00..11 columns, and percentiles read back from it (pure Python)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# Upper edges in ms; the last bin is open (beyond 5 s).
INFERENCE_EDGES_MS: tuple[float, ...] = (2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
INFERENCE_BINS = tuple(f"inference_hist_{i:02d}" for i in range(len(INFERENCE_EDGES_MS) + 1))


def inference_bin(ms: float) -> str:
    """The histogram column an inference time of `ms` counts in."""
    for edge, name in zip(INFERENCE_EDGES_MS, INFERENCE_BINS, strict=False):
        if ms <= edge:
            return name
    return INFERENCE_BINS[-1]


def percentile(counts: Sequence[int] | Mapping[str, int | None], q: float) -> float | None:
    """The q-th quantile (0..1) of the counted times, interpolated within its bin (None when
    nothing was counted; the open last bin answers its lower edge: "over 5,000 ms")."""
    values = (
        [int(counts.get(name) or 0) for name in INFERENCE_BINS]
        if isinstance(counts, Mapping)
        else [int(c) for c in counts]
    )
    total = sum(values)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(values):
        if count and seen + count >= rank:
            low = INFERENCE_EDGES_MS[index - 1] if index else 0.0
            if index == len(INFERENCE_EDGES_MS):
                return float(low)
            high = INFERENCE_EDGES_MS[index]
            return float(low + (high - low) * (rank - seen) / count)
        seen += count
    return float(INFERENCE_EDGES_MS[-1])
