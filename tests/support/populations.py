"""Builders for the segmentation core's tests (no database): populations, fits, contexts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from segments.ml.population import Population
from segments.ml.segmentation import FitResult, fit_segmentation

# The silhouette costs O(rows²): 3,000 rows keep this folder fast; the default 10,000
# only matters at scale.
SCORE_SAMPLE = 3_000
# Planted structure: every client a current Chromium that reports every signal, on its
# tier's typical link, flags and core count, no throttled devices; memory, benchmark and
# the reported network keep their noise and browser quantisation.
PLANTED = {"browser_quirks": False, "weak_cellular": 0.0, "slow_tail": 0.0, "pure_tiers": True}
BOOLEAN_COLUMNS = {"webgpu", "shaderF16", "webnn", "wasmSimd", "saveData", "mobile"}


@dataclass(frozen=True)
class Fitted:
    """A population and the first model fitted on it."""

    population: Population
    result: FitResult


def fit(population: Population, **options: Any) -> FitResult:
    """fit_segmentation with the tests' score sample."""
    options.setdefault("previous", None)
    options.setdefault("seed", 0)
    return fit_segmentation(population.columns, score_sample=SCORE_SAMPLE, **options)


def contexts(columns: dict[str, np.ndarray], rows: int) -> list[dict[str, Any]]:
    """The first `rows` profiles as evaluation contexts: missing fields left out."""
    out: list[dict[str, Any]] = []
    for i in range(rows):
        context: dict[str, Any] = {"targetingKey": f"client-{i}"}
        for name, values in columns.items():
            value = values[i]
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            if name in BOOLEAN_COLUMNS:
                context[name] = bool(value)
            else:
                context[name] = value.item() if isinstance(value, np.generic) else value
        out.append(context)
    return out
