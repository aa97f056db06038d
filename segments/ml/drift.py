"""Drift between segmentation runs: segment shares, features, partitions.

See docs/capability-signals.md, "Segmentation".

Share PSI alone misses a feature shift that leaves the segment sizes alone, hence the
per-feature decile PSI beside it, and the adjusted Rand index of the old and new model on
the same clients. For about six segments, alert around a share PSI of 0.02-0.05 (not the
textbook 0.1 / 0.25, which assume ten equal bins).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from sklearn.metrics import adjusted_rand_score

from segments.ml.features import Columns
from segments.ml.histograms import feature_histograms, psi, psi_against
from segments.ml.segmentation import ModelArtifact, assign_batch

K = TypeVar("K", bound=Hashable)  # segment identity or key


def share_psi(old_shares: Mapping[K, float], new_shares: Mapping[K, float]) -> float:
    """PSI of segment shares keyed by identity (or key); a side's missing segment counts as ε."""
    segments = sorted(set(old_shares) | set(new_shares), key=repr)
    old = np.array([old_shares.get(s, 0.0) for s in segments], dtype=float)
    new = np.array([new_shares.get(s, 0.0) for s in segments], dtype=float)
    return psi(old, new)


def feature_psi(
    old_columns: Columns, new_columns: Columns, spec: Sequence[Mapping[str, Any]]
) -> dict[str, float]:
    """PSI of every transformed feature, binned by the old population's deciles."""
    return psi_against(feature_histograms(old_columns, spec), new_columns, spec)


def adjusted_rand(old: ModelArtifact, new: ModelArtifact, columns_sample: Columns) -> float:
    """How much two models agree on the same clients (1.0: the same partition)."""
    return float(
        adjusted_rand_score(assign_batch(old, columns_sample), assign_batch(new, columns_sample))
    )
