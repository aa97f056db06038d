"""Fit capability segments: choose k, warm-start, keep identities, label, assign in batches.

Method (docs/capability-signals.md, "Segmentation"):

1. Features: the data-driven spec of features.py, standard-scaled, then weighted. With a
   compatible previous model (same feature version and spec) its spec, imputes and scaler
   are kept as they are, so old and new centroids live in the same space.
2. k in `k_range`: each candidate k is fitted on a selection sample (SELECTION_SAMPLE rows)
   once per seed of STABILITY_SEEDS (k-means++, one init); a compatible previous model's
   centroids compete as one more fit for their k, so one unlucky seed cannot make the
   incumbent k look worse than it is. A k is *stable* when the mean pairwise adjusted Rand
   index of its seeds is at least STABLE_ARI. Among stable k (all k when none is), the
   lowest-inertia fit of each is scored: the best silhouette (on `score_sample` rows) wins,
   k within SILHOUETTE_TIE of it are tied and Calinski–Harabasz breaks the tie. The previous
   model's k is kept unless the winner beats its silhouette by K_HYSTERESIS: a flapping k
   would churn identities.
3. Fit: k-means (Lloyd) on at most `fit_sample` rows, started from the winner's centroids,
   each replaced by the previous centroid it matches (a warm start).
4. Identities: Hungarian matching of new to previous centroids on distance; a pair closer
   than MATCH_DISTANCE keeps the previous identity and key. Against an incompatible
   previous model (other feature space) clusters are matched on shared members instead
   (Jaccard ≥ MATCH_JACCARD). Unmatched clusters get fresh identities: `new_identities`,
   to be reviewed by a person.
5. Every row is labelled in batches (`assign_batch`); clusters are profiled in raw units
   from their (completed) members and named by the rules of `label_for`, made unique
   among themselves by `labels_for`. A matched cluster keeps its
   key (its label is recomputed); a new one is keyed by its label, made unique.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import sklearn
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, silhouette_score

from capability_probe.vocabulary import (
    CLUSTERED,
    MEASURED_RTT_MS,
    MEMORY_GB,
    MOBILE,
    NUMBERS,
    SAVE_DATA_SEGMENT,
    WEBGPU,
)
from segments.ml.estimation import complete, fit_estimator
from segments.ml.features import (
    DEFAULT_FEATURE_SPEC,
    FAST_BENCHMARK_MS,
    FEATURE_VERSION,
    WEAK_RTT_MS,
    Columns,
    Spec,
    feature_weights,
    fit_feature_spec,
    fit_scaler,
    row_count,
    same_space,
    transform,
)

# Candidate fits: enough rows for a 1 % cluster to hold 500 of them, few enough that
# 5 k × 3 seeds take seconds.
SELECTION_SAMPLE = 50_000
STABILITY_SEEDS = (0, 1, 2)
STABLE_ARI = 0.9
SILHOUETTE_TIE = 0.02
K_HYSTERESIS = 0.05
# Weighted-scaled units: about one standard deviation of one full-weight feature.
MATCH_DISTANCE = 1.0
MATCH_JACCARD = 0.5
MAX_ITER = 100
# k-means++ starts per seed of a candidate fit, the best kept: with small capability classes
# (3 % of clients) one start often merges two of them, which shows as disagreement between
# the seeds and rejected the k that keeps them apart (on the realistic population, k=7 was
# unstable with one start in half the seeds and stable in all with four).
STARTS_PER_SEED = 4
# scikit-learn computes the silhouette's distances in chunks of its `working_memory` (1 GB
# by default): 128 MB is as fast on 10k rows and keeps the job well inside its 2 GB.
SILHOUETTE_MEMORY_MB = 128
ASSIGN_BATCH = 200_000
SAVE_DATA_KEY = SAVE_DATA_SEGMENT  # the engine's hard-rule segment: no cluster may take its key

# Label words on a cluster's profile in raw units (medians and shares of its members).
MID_BENCHMARK_MS = 250.0
WEBGPU_SHARE = 0.5
WEAK_DOWNLINK_MBPS = 1.5

Profile = dict[str, float | None]


@dataclass(frozen=True)
class ModelArtifact:
    """Everything needed to assign a client to a segment, JSON-able and versioned."""

    spec: list[dict[str, Any]]
    means: list[float]
    scales: list[float]
    weights: list[float]
    centroids: list[list[float]]  # in the weighted-scaled space
    identities: list[int]  # one per centroid, stable across runs
    keys: list[str]  # one per centroid, stable across runs
    labels: list[str]  # one per centroid, recomputed every run
    feature_version: int = FEATURE_VERSION
    # segments/ml/estimation.py: the trees for hidden signals, refitted every run
    estimator: dict[str, Any] | None = None

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
            "estimator": self.estimator,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelArtifact:
        """The artifact from its stored form."""
        return cls(
            spec=[dict(f) for f in data["spec"]],
            means=[float(v) for v in data["means"]],
            scales=[float(v) for v in data["scales"]],
            weights=[float(v) for v in data["weights"]],
            centroids=[[float(v) for v in c] for c in data["centroids"]],
            identities=[int(v) for v in data["identities"]],
            keys=[str(v) for v in data["keys"]],
            labels=[str(v) for v in data["labels"]],
            feature_version=int(data["featureVersion"]),
            estimator=data.get("estimator"),
        )


@dataclass(frozen=True)
class KScore:
    """How one candidate k scored (step 2 of the method)."""

    silhouette: float
    calinski_harabasz: float
    stability: float  # mean pairwise adjusted Rand index across STABILITY_SEEDS


@dataclass
class FitResult:
    """A fitted model, every row's identity and the figures a person reviews."""

    artifact: ModelArtifact
    assignments: np.ndarray  # identity per row
    k: int
    silhouette: float
    calinski_harabasz: float
    stability: float
    sizes: dict[int, int]  # identity -> rows
    centroid_profiles: dict[int, Profile]  # identity -> raw-unit medians and shares
    new_identities: list[int]  # unmatched clusters: they need review
    k_scores: dict[int, KScore] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase


@dataclass(frozen=True)
class _Space:
    spec: Spec
    means: np.ndarray
    scales: np.ndarray
    weights: np.ndarray

    def embed(self, matrix: np.ndarray) -> np.ndarray:
        # (x - mean) · (weight / scale), in this order: the engine evaluates the very same
        # expression, so the two differ at most by the last bit of a logarithm.
        return np.asarray((matrix - self.means) * (self.weights / self.scales), dtype=float)


def _space(artifact: ModelArtifact) -> _Space:
    return _Space(
        artifact.spec,
        np.asarray(artifact.means),
        np.asarray(artifact.scales),
        np.asarray(artifact.weights),
    )


def _artifact(
    space: _Space,
    centroids: np.ndarray,
    identities: list[int],
    keys: list[str] | None = None,
    labels: list[str] | None = None,
    estimator: dict[str, Any] | None = None,
) -> ModelArtifact:
    return ModelArtifact(
        spec=[dict(f) for f in space.spec],
        means=[float(v) for v in space.means],
        scales=[float(v) for v in space.scales],
        weights=[float(v) for v in space.weights],
        centroids=[[float(v) for v in c] for c in centroids],
        identities=identities,
        keys=keys or [],
        labels=labels or [],
        estimator=estimator,
    )


def embed(artifact: ModelArtifact, matrix: np.ndarray) -> np.ndarray:
    """Transformed features (`transform`) as points of the space the centroids live in."""
    return _space(artifact).embed(matrix)


def _nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    # |x - c|² = |x|² - 2 x·c + |c|²; |x|² is the same for every centroid of a row.
    scores = points @ (-2.0 * centroids.T) + (centroids**2).sum(axis=1)
    return np.asarray(scores.argmin(axis=1), dtype=np.int64)


def _slice(columns: Columns, start: int, stop: int) -> dict[str, np.ndarray]:
    return {name: values[start:stop] for name, values in columns.items()}


def _take(columns: Columns, rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[rows] for name, values in columns.items()}


def assign_batch(
    artifact: ModelArtifact, columns: Columns, batch: int = ASSIGN_BATCH
) -> np.ndarray:
    """The identity of every row's nearest centroid, computed `batch` rows at a time (the
    measured network and the artifact's estimates completing each batch first)."""
    space = _space(artifact)
    centroids = np.asarray(artifact.centroids)
    identities = np.asarray(artifact.identities, dtype=np.int64)
    n = row_count(columns)
    out = np.empty(n, dtype=np.int64)
    for start in range(0, n, batch):
        rows = complete(_slice(columns, start, start + batch), artifact.estimator)
        points = space.embed(transform(rows, space.spec))
        out[start : start + batch] = identities[_nearest(points, centroids)]
    return out


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


def _candidates(
    points: np.ndarray,
    k_range: tuple[int, int],
    score_sample: int,
    seed: int,
    incumbent: np.ndarray | None,
) -> tuple[dict[int, KScore], dict[int, np.ndarray]]:
    """Each candidate k's scores and centroids (its lowest-inertia fit).

    The previous model's centroids (`incumbent`) compete as one more fit for their k: a
    seed's unlucky local optimum must not make the previous k look worse than it is.
    """
    rng = np.random.default_rng(seed)
    selection = points[_sample(len(points), SELECTION_SAMPLE, rng)]
    scoring = _sample(len(selection), score_sample, rng)
    scores: dict[int, KScore] = {}
    centroids: dict[int, np.ndarray] = {}
    for k in range(k_range[0], k_range[1] + 1):
        seeded = [
            KMeans(
                n_clusters=k, n_init=STARTS_PER_SEED, max_iter=MAX_ITER, random_state=seed + offset
            ).fit(selection)
            for offset in STABILITY_SEEDS
        ]
        fits = list(seeded)
        if incumbent is not None and len(incumbent) == k:
            fits.append(
                KMeans(n_clusters=k, init=incumbent, n_init=1, max_iter=MAX_ITER).fit(selection)
            )
        best = min(fits, key=lambda model: float(model.inertia_))
        pairs = [adjusted_rand_score(a.labels_, b.labels_) for a, b in combinations(seeded, 2)]
        with sklearn.config_context(working_memory=SILHOUETTE_MEMORY_MB):
            silhouette = float(silhouette_score(selection[scoring], best.labels_[scoring]))
        scores[k] = KScore(
            silhouette=silhouette,
            calinski_harabasz=float(calinski_harabasz_score(selection, best.labels_)),
            stability=float(np.mean(pairs)),
        )
        centroids[k] = np.asarray(best.cluster_centers_)
    return scores, centroids


def choose_k(scores: Mapping[int, KScore], previous_k: int | None) -> int:
    """Step 2 of the method: stable, then silhouette, then Calinski–Harabasz, then hysteresis."""
    stable = [k for k, s in scores.items() if s.stability >= STABLE_ARI] or list(scores)
    top = max(scores[k].silhouette for k in stable)
    tied = [k for k in stable if top - scores[k].silhouette <= SILHOUETTE_TIE]
    best = max(tied, key=lambda k: scores[k].calinski_harabasz)
    if previous_k is None or previous_k not in scores:
        return best
    incumbent = scores[previous_k].silhouette
    return previous_k if scores[best].silhouette - incumbent < K_HYSTERESIS else best


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2), dtype=float)


def _match_centroids(new: np.ndarray, old: np.ndarray) -> dict[int, int]:
    """new index -> old index for Hungarian pairs closer than MATCH_DISTANCE."""
    cost = _distances(new, old)
    rows, cols = linear_sum_assignment(cost)
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= MATCH_DISTANCE}


def _match_members(new_indices: np.ndarray, k: int, old_ids: np.ndarray) -> dict[int, int]:
    """cluster index -> old identity for Hungarian pairs sharing at least MATCH_JACCARD of rows."""
    identities, old_index = np.unique(old_ids, return_inverse=True)
    m = len(identities)
    both = np.bincount(new_indices * m + old_index, minlength=k * m).reshape(k, m).astype(float)
    union = both.sum(axis=1)[:, None] + both.sum(axis=0)[None, :] - both
    jaccard = both / np.maximum(union, 1.0)
    rows, cols = linear_sum_assignment(-jaccard)
    return {
        int(r): int(identities[c])
        for r, c in zip(rows, cols, strict=True)
        if jaccard[r, c] >= MATCH_JACCARD
    }


def _warm_start(candidate: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """The candidate centroids, each replaced by the previous centroid it matches."""
    if previous is None:
        return candidate
    init = candidate.copy()
    for new_index, old_index in _match_centroids(candidate, previous).items():
        init[new_index] = previous[old_index]
    return init


def centroid_profile(
    columns: Columns, mask: np.ndarray, reported: Columns | None = None
) -> Profile:
    """A cluster in raw units: medians and shares people can read (None: nobody reports it).

    `columns` are the completed ones segmentation clustered (memory estimated where hidden,
    the network measured); `reported`, the columns as clients reported them, gives the share
    of members whose memory was reported and whose network was measured.
    """

    def present(name: str, source: Columns = columns) -> np.ndarray:
        if name not in source:
            return np.zeros(0)
        values = np.asarray(source[name], dtype=float)[mask]
        return np.asarray(values[~np.isnan(values)])

    def median(name: str) -> float | None:
        values = present(name)
        return round(float(np.median(values)), 2) if values.size else None

    def share(name: str) -> float | None:
        values = present(name)
        return round(float(values.mean()), 3) if values.size else None

    def reported_share(name: str) -> float | None:
        if reported is None or name not in reported or not mask.any():
            return None
        values = np.asarray(reported[name], dtype=float)[mask]
        return round(float(np.mean(~np.isnan(values))), 3)

    return {
        "clients": int(mask.sum()),
        # memoryGb, benchmarkMs, rttMs, downlinkMbps: every clustered measurement
        **{f.wire: median(f.wire) for f in CLUSTERED if f.kind in NUMBERS},
        "webgpuShare": share(WEBGPU.wire),
        "mobileShare": share(MOBILE.wire),
        "memoryReportedShare": reported_share(MEMORY_GB.wire),
        "networkMeasuredShare": reported_share(MEASURED_RTT_MS.wire),
    }


def _descriptors(profile: Mapping[str, float | None]) -> tuple[list[str], list[str]]:
    """(the words of a cluster's label, more words that tell it from a look-alike)."""
    bench = profile.get("benchmarkMs")
    bench = float("inf") if bench is None else bench
    speed = "fast" if bench <= FAST_BENCHMARK_MS else "mid" if bench <= MID_BENCHMARK_MS else "slow"
    device = "phones" if (profile.get("mobileShare") or 0.0) >= 0.5 else "computers"
    webgpu = (profile.get("webgpuShare") or 0.0) >= WEBGPU_SHARE
    rtt, downlink = profile.get("rttMs"), profile.get("downlinkMbps")
    weak = (rtt is not None and rtt >= WEAK_RTT_MS) or (
        downlink is not None and downlink < WEAK_DOWNLINK_MBPS
    )
    words = [speed, device]
    words += ["webgpu"] if webgpu else []
    words += ["weak-network"] if weak else []
    extra = [] if webgpu else ["no-webgpu"]
    extra += [] if weak else ["good-network"]
    memory = profile.get("memoryGb")
    if memory is not None:
        extra.append(f"{2 ** round(np.log2(max(memory, 0.25))):g}gb")
    if rtt is not None:
        extra.append(f"rtt-{int(round(rtt, -1))}ms")
    return words, extra


def label_for(profile: Mapping[str, float | None]) -> str:
    """A readable label from a cluster's raw-unit profile: speed, device class, accelerator,
    network, e.g. `fast-phones-webgpu`, `slow-phones-weak-network`, `mid-computers`.

    Speed is the median benchmark (`fast` ≤ 60 ms, which fits a 100 ms interaction budget;
    `mid` ≤ 250 ms; else `slow`); the device class is the members' majority; `webgpu` when at
    least half have it; `weak-network` when the median RTT is 300 ms or more or the median
    downlink under 1.5 Mbps. Look-alikes are told apart by `labels_for`.
    """
    words, _ = _descriptors(profile)
    return "-".join(words)


def labels_for(profiles: Sequence[Mapping[str, float | None]]) -> list[str]:
    """Every cluster's label, unique where the clusters differ: clusters that would share a
    label get the words that tell them apart (`no-webgpu`, `good-network`, memory class,
    RTT), one at a time, until they differ. Only clusters alike in all of these share one
    (and `unique_key` numbers their keys)."""
    described = [_descriptors(profile) for profile in profiles]
    depth = [0] * len(profiles)

    def label(i: int) -> str:
        words, extra = described[i]
        return "-".join(words + extra[: depth[i]])

    while True:
        labels = [label(i) for i in range(len(profiles))]
        groups: dict[str, list[int]] = {}
        for i, text in enumerate(labels):
            groups.setdefault(text, []).append(i)
        grew = False
        for members in groups.values():
            if len(members) < 2:
                continue
            for i in members:
                if depth[i] < len(described[i][1]):
                    depth[i] += 1
                    grew = True
        if not grew:
            return labels


def unique_key(label: str, taken: set[str]) -> str:
    """`label`, or `label-2`, `label-3`, … : the first not in `taken` (which it joins)."""
    candidate, suffix = label, 2
    while candidate in taken:
        candidate, suffix = f"{label}-{suffix}", suffix + 1
    taken.add(candidate)
    return candidate


def _compatible(previous: ModelArtifact | None) -> bool:
    return (
        previous is not None
        and previous.feature_version == FEATURE_VERSION
        and same_space(previous.spec, DEFAULT_FEATURE_SPEC)
    )


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - started, 4)


def fit_segmentation(
    columns: Columns,
    *,
    previous: ModelArtifact | None,
    seed: int,
    k_range: tuple[int, int] = (4, 8),
    fit_sample: int = 1_000_000,
    score_sample: int = 10_000,
    next_identity: int = 1,
    reserved_keys: Collection[str] = (),
) -> FitResult:
    """Fit the segments of a population; identities and keys carried over from `previous`.

    New identities count up from `next_identity`; a new key avoids `reserved_keys` (every
    key ever used, retired segments included) as well as the previous model's keys.
    """
    n = row_count(columns)
    if not 2 <= k_range[0] <= k_range[1] or n < k_range[1] * 10:
        raise ValueError(f"cannot choose k in {k_range} for {n} rows")
    timer = _Timer()
    warm = _compatible(previous)
    with timer.phase("estimator"):
        estimator = fit_estimator(columns, seed=seed)
    with timer.phase("features"):
        # Fancy indexing copies: with every row in the sample, read the columns in place.
        sampled = complete(
            columns
            if n <= fit_sample
            else _take(columns, _sample(n, fit_sample, np.random.default_rng(seed))),
            estimator,
        )
        if warm:
            assert previous is not None
            space = _space(previous)
            matrix = transform(sampled, space.spec)
        else:
            spec = fit_feature_spec(sampled, DEFAULT_FEATURE_SPEC)
            matrix = transform(sampled, spec)
            means, scales = fit_scaler(matrix)
            space = _Space(spec, means, scales, feature_weights(spec))
        points = space.embed(matrix)
        del sampled, matrix

    with timer.phase("choose_k"):
        previous_centroids = np.asarray(previous.centroids) if warm and previous else None
        scores, candidates = _candidates(points, k_range, score_sample, seed, previous_centroids)
        k = choose_k(scores, None if previous_centroids is None else len(previous_centroids))

    with timer.phase("fit"):
        model = KMeans(
            n_clusters=k,
            init=_warm_start(candidates[k], previous_centroids),
            n_init=1,
            max_iter=MAX_ITER,
            random_state=seed,
        ).fit(points)
        centroids = np.asarray(model.cluster_centers_)
        del points, model

    with timer.phase("label"):
        # Cluster indices first; identities are known once they are matched.
        indices = assign_batch(
            _artifact(space, centroids, list(range(k)), estimator=estimator), columns
        )

    with timer.phase("match"):
        matched: dict[int, int] = {}  # cluster index -> previous identity
        if previous is not None and previous_centroids is not None:
            pairs = _match_centroids(centroids, previous_centroids)
            matched = {i: previous.identities[j] for i, j in pairs.items()}
        elif previous is not None:
            matched = _match_members(indices, k, assign_batch(previous, columns))
        new_indices = [i for i in range(k) if i not in matched]
        identities = [matched.get(i, 0) for i in range(k)]
        for offset, index in enumerate(new_indices):
            identities[index] = next_identity + offset
        assignments = np.asarray(identities, dtype=np.int64)[indices]

    with timer.phase("profile"):
        completed = complete(columns, estimator)
        profiles = {
            identities[i]: centroid_profile(completed, indices == i, columns) for i in range(k)
        }
        del completed
        labels = labels_for([profiles[i] for i in identities])
        key_of_identity = (
            dict(zip(previous.identities, previous.keys, strict=True)) if previous else {}
        )
        taken = {SAVE_DATA_KEY, *reserved_keys, *key_of_identity.values()}
        keys = [key_of_identity.get(identity, "") for identity in identities]
        # The biggest new cluster gets the plain label, smaller ones the suffixes.
        for index in sorted(
            new_indices, key=lambda i: -int(profiles[identities[i]]["clients"] or 0)
        ):
            keys[index] = unique_key(labels[index], taken)

    chosen = scores[k]
    return FitResult(
        artifact=_artifact(space, centroids, identities, keys, labels, estimator),
        assignments=assignments,
        k=k,
        silhouette=chosen.silhouette,
        calinski_harabasz=chosen.calinski_harabasz,
        stability=chosen.stability,
        sizes={i: int(profiles[i]["clients"] or 0) for i in identities},
        centroid_profiles=profiles,
        new_identities=[identities[i] for i in new_indices],
        k_scores=scores,
        timings=timer.timings,
    )


def planted_agreement(assignments: np.ndarray, truth: Sequence[Any] | np.ndarray) -> float:
    """Adjusted Rand index between assignments and planted tiers (for tests and reports)."""
    return float(adjusted_rand_score(np.asarray(truth), assignments))
