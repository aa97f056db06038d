"""Per-feature decile histograms: one run's reference, the next run's drift measure (PSI).

A run stores the decile edges of each transformed feature and the share of rows in each
bin; the next run bins its own rows with those edges and computes the PSI. No raw rows of
the old population need to be kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from segments.ml.features import transform

EPSILON = 1e-4  # floor on a bin's share so an empty bin does not make the PSI infinite


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    bins = np.searchsorted(edges, values, side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1).astype(float)
    return np.maximum(counts / max(1, len(values)), EPSILON)


def feature_histograms(
    columns: Mapping[str, np.ndarray], spec: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, list[float]]]:
    """Decile edges and bin shares of every transformed feature."""
    matrix = transform(columns, spec)
    result: dict[str, dict[str, list[float]]] = {}
    for index, feature in enumerate(spec):
        values = matrix[:, index]
        edges = np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9)))
        result[str(feature["name"])] = {
            "edges": [float(e) for e in edges],
            "shares": [float(s) for s in _shares(values, edges)],
        }
    return result


def psi_against(
    reference: Mapping[str, Mapping[str, Sequence[float]]],
    columns: Mapping[str, np.ndarray],
    spec: Sequence[Mapping[str, Any]],
) -> dict[str, float]:
    """PSI of each feature of `columns` against a reference from feature_histograms()."""
    matrix = transform(columns, spec)
    result: dict[str, float] = {}
    for index, feature in enumerate(spec):
        name = str(feature["name"])
        if name not in reference:
            continue
        edges = np.asarray(reference[name]["edges"], dtype=float)
        old = np.asarray(reference[name]["shares"], dtype=float)
        new = _shares(matrix[:, index], edges)
        result[name] = round(float(np.sum((new - old) * np.log(new / old))), 6)
    return result
