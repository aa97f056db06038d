"""Segments follow what devices can do: a segment's clients can run the same rung.

A per-segment rollout treats a segment as one population; if its clients' devices could
run different rungs, the guardrails of one rung would judge clients served another. The
ladder is the demo's smart-compose (issue 14, bench/capability_truth.py): edge needs
memoryGb ≥ 4, benchmarkMs ≤ 60 and WebGPU, cloud rttMs ≤ 300, lite needs nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from segments.ml.population import generate_population
from segments.ml.segmentation import assign_batch

HELD_OUT = 5_000
MIN_CLIENTS = 50  # below it a segment's share is noise, not a finding
TARGET = 0.95


def deserved_rungs(truth: dict[str, np.ndarray]) -> list[str]:
    """The rung each client's real device and network can run (the truth, not the probe)."""
    edge = (truth["memoryGb"] >= 4) & (truth["benchmarkMs"] <= 60) & (truth["webgpu"] > 0.5)
    cloud = truth["rttMs"] <= 300
    return ["edge" if e else "cloud" if c else "lite" for e, c in zip(edge, cloud, strict=True)]


def test_segments__held_out_realistic_clients__each_at_least_95_percent_one_rung(
    realistic,
) -> None:
    held_out = generate_population(HELD_OUT, seed=12)
    segments = assign_batch(realistic.result.artifact, held_out.columns)
    rungs = deserved_rungs(held_out.truth)
    by_segment: dict[int, list[str]] = defaultdict(list)
    for segment, rung in zip(segments, rungs, strict=True):
        by_segment[int(segment)].append(rung)

    homogeneity = {
        segment: Counter(members).most_common(1)[0][1] / len(members)
        for segment, members in by_segment.items()
        if len(members) >= MIN_CLIENTS
    }

    assert len(homogeneity) >= 5  # the realistic fleet has that many capability classes
    assert min(homogeneity.values()) >= TARGET, homogeneity
