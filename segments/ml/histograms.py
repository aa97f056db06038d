"""Per-feature decile histograms: one run's reference, the next run's drift measure (PSI).

A run stores the decile edges of each transformed feature and the share of rows in each
bin; the next run bins its own rows with those edges and computes the PSI. No raw rows of
the old population need to be kept.

Bins are closed on the right: (-inf, e0], (e0, e1], …, (e_last, inf), where the edges are
the reference's minimum and its deciles, deduplicated. The minimum matters for flags and
bucketed values: a feature that is 0 for 95 % of the reference has every decile at 0, and
without it 0 and 1 would share a bin and a shift between them would go unseen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from segments.ml.features import Columns, transform

EPSILON = 1e-4  # floor on a bin's share so an empty bin does not make the PSI infinite
QUANTILES = np.linspace(0.0, 0.9, 10)  # the minimum, then the deciles
Histograms = dict[str, dict[str, list[float]]]


def psi(old: np.ndarray, new: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins (ε-floored)."""
    old = np.maximum(np.asarray(old, dtype=float), EPSILON)
    new = np.maximum(np.asarray(new, dtype=float), EPSILON)
    return float(np.sum((new - old) * np.log(new / old)))


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    bins = np.searchsorted(edges, values, side="left")
    counts = np.bincount(bins, minlength=len(edges) + 1).astype(float)
    return counts / max(1, len(values))


def feature_histograms(columns: Columns, spec: Sequence[Mapping[str, Any]]) -> Histograms:
    """Bin edges and bin shares of every transformed feature (the reference for PSI)."""
    matrix = transform(columns, spec)
    result: Histograms = {}
    for index, feature in enumerate(spec):
        values = matrix[:, index]
        edges = np.unique(np.quantile(values, QUANTILES)) if len(values) else np.zeros(0)
        result[str(feature["name"])] = {
            "edges": edges.tolist(),
            "shares": _shares(values, edges).tolist(),
        }
    return result


def psi_against(
    reference: Mapping[str, Mapping[str, Sequence[float]]],
    columns: Columns,
    spec: Sequence[Mapping[str, Any]],
) -> dict[str, float]:
    """PSI of each feature of `columns` against a reference from feature_histograms()."""
    matrix = transform(columns, spec)
    result: dict[str, float] = {}
    for index, feature in enumerate(spec):
        name = str(feature["name"])
        if name in reference:
            edges = np.asarray(reference[name]["edges"], dtype=float)
            new = _shares(matrix[:, index], edges)
            result[name] = psi(np.asarray(reference[name]["shares"]), new)
    return result
