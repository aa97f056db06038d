"""Drift between segmentation runs: share PSI and the adjusted Rand index of two models."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.metrics import adjusted_rand_score

from segments.ml.segmentation import ModelArtifact, assign_batch

EPSILON = 1e-4


def share_psi(old_shares: Mapping[str, float], new_shares: Mapping[str, float]) -> float:
    """Population stability index of segment shares (keys missing on a side count as ε)."""
    keys = set(old_shares) | set(new_shares)
    old = np.array([max(old_shares.get(k, 0.0), EPSILON) for k in keys])
    new = np.array([max(new_shares.get(k, 0.0), EPSILON) for k in keys])
    return round(float(np.sum((new - old) * np.log(new / old))), 6)


def adjusted_rand(
    old: ModelArtifact, new: ModelArtifact, sample: Mapping[str, np.ndarray]
) -> float:
    """How much two models agree on the same clients (1 = the same partition)."""
    return round(
        float(adjusted_rand_score(assign_batch(old, sample), assign_batch(new, sample))), 6
    )
