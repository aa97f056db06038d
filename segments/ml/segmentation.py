"""Fit capability segments: choose k, warm-start, keep identities, label, assign in batches.

Method (capability.md): k-means on the weighted, standard-scaled features of a sample of at
most `fit_sample` rows; k in 4..8 by silhouette on a small sample, with Calinski-Harabasz
and stability across seeds as checks; warm start from the previous model (same spec and
scaler) and Hungarian matching of centroids for stable identities; labels from centroids
in raw units; every row labelled in batches.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, silhouette_score

from segments.ml.features import (
    DEFAULT_FEATURE_SPEC,
    FEATURE_VERSION,
    fit_feature_spec,
    scaler,
    transform,
)

SELECTION_SAMPLE = 12_000  # rows the candidate k are fitted on
SCORE_SAMPLE = 4_000  # rows the silhouette is computed on (quadratic cost)
STABILITY_SEEDS = (11, 23)
# Keep the previous k unless another k is clearly better: flapping k would churn identities.
K_HYSTERESIS = 0.05
# k is a property of the data, not of the run: candidates are scored on the same sample
# whatever the run's seed.
SELECTION_SEED = 0
# A new centroid farther than this from every previous one (weighted-scaled units) is new.
MATCH_DISTANCE = 1.0


@dataclass(frozen=True)
class ModelArtifact:
    """Everything needed to assign a client to a segment, JSON-able and versioned."""

    spec: list[dict[str, Any]]
    means: list[float]
    scales: list[float]
    weights: list[float]
    centroids: list[list[float]]
    identities: list[int]
    keys: list[str]
    labels: list[str]
    feature_version: int = FEATURE_VERSION

    def to_json(self) -> dict[str, Any]:
        """The artifact as stored in the database and shipped in snapshots."""
        return {
            "spec": self.spec,
            "means": self.means,
            "scales": self.scales,
            "weights": self.weights,
            "centroids": self.centroids,
            "identities": self.identities,
            "keys": self.keys,
            "labels": self.labels,
            "featureVersion": self.feature_version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelArtifact:
        """The artifact from its stored form."""
        return cls(
            spec=list(data["spec"]),
            means=[float(v) for v in data["means"]],
            scales=[float(v) for v in data["scales"]],
            weights=[float(v) for v in data["weights"]],
            centroids=[[float(v) for v in c] for c in data["centroids"]],
            identities=[int(v) for v in data["identities"]],
            keys=[str(v) for v in data["keys"]],
            labels=[str(v) for v in data["labels"]],
            feature_version=int(data.get("featureVersion", FEATURE_VERSION)),
        )


@dataclass
class FitResult:
    artifact: ModelArtifact
    assignments: np.ndarray  # identity per row
    k: int
    silhouette: float
    calinski_harabasz: float
    stability: float
    sizes: dict[int, int]
    centroid_profiles: dict[int, dict[str, float | None]]
    new_identities: list[int]
    timings: dict[str, float] = field(default_factory=dict)


def embed(artifact: ModelArtifact, matrix: np.ndarray) -> np.ndarray:
    """Transformed features -> the weighted, scaled space the centroids live in."""
    scaled = (matrix - np.asarray(artifact.means)) / np.asarray(artifact.scales)
    return np.asarray(scaled * np.asarray(artifact.weights), dtype=float)


def _nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    # |x - c|² = |x|² - 2 x·c + |c|²; |x|² is the same for every centroid of a row.
    scores = points @ centroids.T * -2.0 + (centroids**2).sum(axis=1)
    return np.asarray(scores.argmin(axis=1), dtype=np.int64)


def assign_batch(
    artifact: ModelArtifact, columns: Mapping[str, np.ndarray], batch: int = 200_000
) -> np.ndarray:
    """The identity of every row's nearest centroid, computed in batches."""
    n = len(next(iter(columns.values())))
    centroids = np.asarray(artifact.centroids)
    identities = np.asarray(artifact.identities)
    out = np.empty(n, dtype=np.int64)
    for start in range(0, n, batch):
        part = {name: values[start : start + batch] for name, values in columns.items()}
        out[start : start + batch] = identities[
            _nearest(embed(artifact, transform(part, artifact.spec)), centroids)
        ]
    return out


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _kmeans(
    points: np.ndarray, k: int, seed: int, init: np.ndarray | None = None, n_init: int = 3
) -> KMeans:
    if init is not None and len(init) == k:
        model = KMeans(n_clusters=k, init=init, n_init=1, max_iter=50, random_state=seed)
    else:
        model = KMeans(n_clusters=k, n_init=n_init, max_iter=100, random_state=seed)
    return model.fit(points)


def _choose_k(
    points: np.ndarray, k_range: tuple[int, int], seed: int, previous_k: int | None
) -> tuple[int, dict[int, dict[str, float]]]:
    """k by silhouette among the stable candidates; the previous k kept unless beaten clearly."""
    selection = points[_sample(len(points), SELECTION_SAMPLE, seed)]
    scoring = _sample(len(selection), SCORE_SAMPLE, seed + 1)
    scores: dict[int, dict[str, float]] = {}
    for k in range(k_range[0], k_range[1] + 1):
        fits = [_kmeans(selection, k, s, n_init=1) for s in STABILITY_SEEDS]
        labels = fits[0].labels_
        scores[k] = {
            "silhouette": float(silhouette_score(selection[scoring], labels[scoring])),
            "calinski_harabasz": float(calinski_harabasz_score(selection, labels)),
            "stability": float(adjusted_rand_score(fits[0].labels_, fits[1].labels_)),
        }
    stable = [k for k, s in scores.items() if s["stability"] >= 0.9] or list(scores)
    best = max(stable, key=lambda k: scores[k]["silhouette"])
    if previous_k in stable and (
        scores[best]["silhouette"] - scores[previous_k]["silhouette"] < K_HYSTERESIS
    ):
        best = previous_k
    return best, scores


def centroid_profile(
    columns: Mapping[str, np.ndarray], mask: np.ndarray
) -> dict[str, float | None]:
    """A cluster in raw units: medians and shares people can read (None: nobody reports it)."""

    def median(name: str) -> float | None:
        values = np.asarray(columns[name], dtype=float)[mask]
        values = values[~np.isnan(values)]
        return round(float(np.median(values)), 2) if values.size else None

    def share(name: str) -> float:
        values = np.asarray(columns[name], dtype=float)[mask]
        values = values[~np.isnan(values)]
        return round(float(values.mean()), 3) if values.size else 0.0

    effective = columns["effectiveType"][mask]
    known = [e for e in effective if e is not None]
    return {
        "clients": int(mask.sum()),
        "memoryGb": median("memoryGb"),
        "cores": median("cores"),
        "benchmarkMs": median("benchmarkMs"),
        "rttMs": median("rttMs"),
        "downlinkMbps": median("downlinkMbps"),
        "webgpuShare": share("webgpu"),
        "mobileShare": share("mobile"),
        "share4g": round(sum(e == "4g" for e in known) / len(known), 3) if known else 1.0,
    }


def label_for(profile: Mapping[str, float | None]) -> str:
    """A readable label from a centroid profile (rules on raw units)."""
    rtt, downlink, share_4g = profile["rttMs"], profile["downlinkMbps"], profile["share4g"]
    if (
        (rtt is not None and rtt > 300)
        or (downlink is not None and downlink < 1.5)
        or (share_4g is not None and share_4g < 0.5)
    ):
        return "constrained-network"
    bench = profile["benchmarkMs"] if profile["benchmarkMs"] is not None else 10_000.0
    memory = profile["memoryGb"] or 0.0
    if bench <= 60 and ((profile["webgpuShare"] or 0.0) >= 0.5 or memory >= 8):
        return "edge-ready"
    if bench <= 250:
        return "edge-marginal"
    return "cloud-only"


def _unique(label: str, taken: set[str]) -> str:
    candidate, suffix = label, 2
    while candidate in taken:
        candidate, suffix = f"{label}-{suffix}", suffix + 1
    taken.add(candidate)
    return candidate


def fit_segmentation(
    columns: Mapping[str, np.ndarray],
    *,
    previous: ModelArtifact | None,
    seed: int,
    k_range: tuple[int, int] = (4, 8),
    fit_sample: int = 1_000_000,
    next_identity: int = 1,
) -> FitResult:
    """Fit the segments of a population; identities carried over from `previous`."""
    timings: dict[str, float] = {}
    tick = time.perf_counter()
    n = len(next(iter(columns.values())))
    sample = _sample(n, fit_sample, seed)
    sampled = {name: values[sample] for name, values in columns.items()}
    if previous is not None:
        spec, means, scales = previous.spec, np.asarray(previous.means), np.asarray(previous.scales)
    else:
        spec = fit_feature_spec(sampled, DEFAULT_FEATURE_SPEC)
        means, scales = scaler(transform(sampled, spec))
    weights = np.array([float(f.get("weight", 1.0)) for f in spec])
    parts = ModelArtifact(spec, list(means), list(scales), list(weights), [], [], [], [])
    points = embed(parts, transform(sampled, spec))
    timings["features"] = time.perf_counter() - tick

    tick = time.perf_counter()
    previous_k = len(previous.centroids) if previous is not None else None
    k, scores = _choose_k(points, k_range, SELECTION_SEED, previous_k)
    timings["choose_k"] = time.perf_counter() - tick

    tick = time.perf_counter()
    init = np.asarray(previous.centroids) if previous is not None and previous_k == k else None
    model = _kmeans(points, k, seed, init)
    centroids = model.cluster_centers_
    timings["fit"] = time.perf_counter() - tick

    # Identities: Hungarian matching against the previous centroids (same space).
    identities = [-1] * k
    keys = [""] * k
    new_identities: list[int] = []
    taken: set[str] = set()
    if previous is not None:
        old = np.asarray(previous.centroids)
        cost = np.linalg.norm(centroids[:, None, :] - old[None, :, :], axis=2)
        for new_index, old_index in zip(*linear_sum_assignment(cost), strict=True):
            if cost[new_index, old_index] <= MATCH_DISTANCE:
                identities[new_index] = previous.identities[old_index]
                keys[new_index] = previous.keys[old_index]
                taken.add(keys[new_index])
    for index in range(k):
        if identities[index] == -1:
            identities[index] = next_identity
            new_identities.append(next_identity)
            next_identity += 1

    tick = time.perf_counter()
    artifact_ids = np.asarray(identities)
    provisional = ModelArtifact(
        spec, list(means), list(scales), list(weights), centroids.tolist(), identities, [], []
    )
    assignments = assign_batch(provisional, columns)
    timings["label"] = time.perf_counter() - tick

    profiles = {int(i): centroid_profile(columns, assignments == i) for i in artifact_ids}
    labels = [label_for(profiles[i]) for i in identities]
    # Bigger clusters get the plain label, smaller ones the suffixes.
    for index in sorted(range(k), key=lambda j: -(profiles[identities[j]]["clients"] or 0)):
        if not keys[index]:
            keys[index] = _unique(labels[index], taken)
    artifact = ModelArtifact(
        spec=[dict(f) for f in spec],
        means=[float(v) for v in means],
        scales=[float(v) for v in scales],
        weights=[float(v) for v in weights],
        centroids=[[float(v) for v in c] for c in centroids],
        identities=identities,
        keys=keys,
        labels=labels,
    )
    return FitResult(
        artifact=artifact,
        assignments=assignments,
        k=k,
        silhouette=scores[k]["silhouette"],
        calinski_harabasz=scores[k]["calinski_harabasz"],
        stability=scores[k]["stability"],
        sizes={int(i): int((assignments == i).sum()) for i in artifact_ids},
        centroid_profiles=profiles,
        new_identities=new_identities,
        timings=timings,
    )


def planted_agreement(assignments: np.ndarray, truth: Sequence[Any]) -> float:
    """Adjusted Rand index between assignments and planted tiers (for tests and reports)."""
    return float(adjusted_rand_score(np.asarray(truth), assignments))
