"""The feature pipeline of docs/capability-signals.md, as a data-driven spec.

The same spec travels with the model into every snapshot, where rollout/engine/capability.py
interprets it in plain Python per request; here it is interpreted with numpy for whole
populations. A test keeps the two in agreement, so a transform added here must be added
there too.

A feature is a JSON-able dict: `name`, `source` (a population column: one of the clustered
fields of capability_probe/vocabulary.py, and every one of them is used; segmentation feeds
it `estimation.complete`d columns), `transform` and its
parameters, `weight` (multiplies the feature after standard scaling) and, once fitted,
`impute` (the transformed value used when the source is missing).

| transform  | value                                        | missing source |
| ---------- | -------------------------------------------- | -------------- |
| `log2`     | log2 of the value clipped to `clip` [lo, hi] | impute         |
| `log1p`    | log1p of the clipped value                   | impute         |
| `log`      | natural log of the clipped value             | impute         |
| `ordinal`  | `levels[value]` (an unknown level: impute)   | impute         |
| `bool`     | 1.0 when true (> 0.5), else 0.0              | impute         |
| `missing`  | 0.0                                          | 1.0            |
| `at_least` | 1.0 when value ≥ `threshold`, else 0.0       | 0.0            |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from capability_probe.vocabulary import (
    BENCHMARK_MS,
    DOWNLINK_MBPS,
    EFFECTIVE_TYPE,
    MEMORY_GB,
    RTT_MS,
    SHADER_F16,
    WEBGPU,
)

# Bump whenever DEFAULT_FEATURE_SPEC or a transform's meaning changes: models fitted with
# another version are not warm-started from (their centroids live in another space).
FEATURE_VERSION = 4
Spec = list[dict[str, Any]]
Columns = Mapping[str, np.ndarray]

# slow-2g 0, 2g 1, 3g 2, 4g 3
EFFECTIVE_TYPE_LEVELS = {level: code for code, level in enumerate(EFFECTIVE_TYPE.choices)}
LOG_TRANSFORMS = {"log2": np.log2, "log1p": np.log1p, "log": np.log}
# The smallest clip floor for which each log transform stays finite.
LOG_DOMAIN_FLOOR = {"log2": 0.0, "log1p": -1.0, "log": 0.0}
TRANSFORMS = frozenset({*LOG_TRANSFORMS, "ordinal", "bool", "missing", "at_least"})
FLAG_WEIGHT = 0.5  # flags scaled down so that a pile of them does not dominate
# WebGPU: no on-device rung runs without the accelerator, however fast the device, so it
# weighs above the thresholds (at 2, fast phones without WebGPU joined those with it).
CLASS_WEIGHT = 4.0
THRESHOLD_WEIGHT = 3.0  # the documented capability thresholds
FAST_BENCHMARK_MS = 60.0  # fits a 100 ms interaction budget (docs/budgets.md)
WEAK_RTT_MS = 300.0  # a cloud rung is slow beyond it

DEFAULT_FEATURE_SPEC: Spec = [
    # Features follow what devices can do, not what browsers hide (docs/capability-signals.md,
    # "Segmentation"): segmentation clusters `estimation.complete`d columns, where memory is
    # estimated for Safari and Firefox and the network is the client's own measurement, so no
    # feature says "not reported". Not clustered: cores (WebKit clamps them to 4 or 8),
    # WebNN (Chromium only: its absence is the browser's) and WASM SIMD (98 % have it: its
    # rare absence made outlier clusters).
    #
    # Device memory arrives bucketed in powers of two: log2 makes the buckets equidistant.
    {"name": "memory_log2", "source": MEMORY_GB.wire, "transform": "log2", "clip": [0.25, 32]},
    # A fast link measures anywhere from 0 to 50 ms (Chromium rounds its estimate to 50): all
    # of it clips to 50, faster than any rung needs.
    {"name": "rtt_log1p", "source": RTT_MS.wire, "transform": "log1p", "clip": [50, 3000]},
    {
        "name": "downlink_log1p",
        "source": DOWNLINK_MBPS.wire,
        "transform": "log1p",
        "clip": [0, 100],
    },
    # The accelerator an on-device model runs on: a capability class of its own, weighted
    # so that devices with and without it do not share a segment.
    {"name": "webgpu", "source": WEBGPU.wire, "transform": "bool", "weight": CLASS_WEIGHT},
    {"name": "shader_f16", "source": SHADER_F16.wire, "transform": "bool", "weight": FLAG_WEIGHT},
    # The measured reference workload: the most honest signal; log because a slow device is
    # slow by a factor, not by a number of milliseconds.
    {
        "name": "benchmark_log",
        "source": BENCHMARK_MS.wire,
        "transform": "log",
        "clip": [0.5, 20000],
    },
    # A client without the benchmark has not run probe.js (an inline context, a native app
    # without the workload): that is a fact about what is known, not about a browser.
    {
        "name": "benchmark_missing",
        "source": BENCHMARK_MS.wire,
        "transform": "missing",
        "weight": FLAG_WEIGHT,
    },
    # The capability classes the product documents (docs/capability-signals.md): a reference
    # workload within 60 ms fits a 100 ms interaction budget (on-device rungs), a round trip of
    # 300 ms or more makes a cloud rung slow. Weighted above the measurements, so that a
    # segment does not straddle them: its clients can run the same rungs.
    {
        "name": "benchmark_slow",
        "source": BENCHMARK_MS.wire,
        "transform": "at_least",
        "threshold": FAST_BENCHMARK_MS,
        "weight": THRESHOLD_WEIGHT,
    },
    {
        "name": "rtt_weak",
        "source": RTT_MS.wire,
        "transform": "at_least",
        "threshold": WEAK_RTT_MS,
        "weight": THRESHOLD_WEIGHT,
    },
]


def row_count(columns: Columns) -> int:
    """The number of rows of a population's columns (0 when there are none)."""
    return len(next(iter(columns.values()))) if columns else 0


def _validate(feature: Mapping[str, Any]) -> None:
    transform_name = feature.get("transform")
    if transform_name not in TRANSFORMS:
        raise ValueError(f"unknown transform {transform_name!r} in feature {feature.get('name')!r}")
    if transform_name in LOG_TRANSFORMS:
        lo, _ = feature["clip"]
        if float(lo) <= LOG_DOMAIN_FLOOR[str(transform_name)]:
            raise ValueError(f"clip floor of {feature['name']!r} is outside the log's domain")


def _is_missing(values: np.ndarray) -> np.ndarray:
    """NaN in numeric columns, None in text columns."""
    if values.dtype == object:
        return np.asarray(values == None, dtype=bool)  # noqa: E711 - elementwise on objects
    return np.asarray(np.isnan(values), dtype=bool)


def _raw_feature(columns: Columns, feature: Mapping[str, Any], n: int) -> np.ndarray:
    """One feature before imputation: NaN where it needs the impute value."""
    transform_name = str(feature["transform"])
    source = columns.get(str(feature["source"]))
    if source is None:
        source = np.full(n, np.nan)
    if transform_name == "missing":
        return _is_missing(source).astype(float)
    if transform_name == "ordinal":
        out = np.full(n, np.nan)
        for level, code in dict(feature["levels"]).items():
            out[source == level] = float(code)
        return out
    values = np.asarray(source, dtype=float)
    if transform_name == "at_least":
        with np.errstate(invalid="ignore"):
            return (values >= float(feature["threshold"])).astype(float)
    if transform_name == "bool":
        return np.where(np.isnan(values), np.nan, values > 0.5)
    lo, hi = feature["clip"]
    return np.asarray(LOG_TRANSFORMS[transform_name](np.clip(values, lo, hi)), dtype=float)


def fit_feature_spec(
    columns: Columns, spec: Sequence[Mapping[str, Any]] = DEFAULT_FEATURE_SPEC
) -> Spec:
    """The spec with `impute` (median of present transformed values) and `weight` filled in."""
    n = row_count(columns)
    fitted: Spec = []
    for feature in spec:
        _validate(feature)
        raw = _raw_feature(columns, feature, n)
        present = raw[~np.isnan(raw)]
        # A feature nobody reports sits at 0.0; the scaler then gives it no spread at all.
        impute = float(np.median(present)) if present.size else 0.0
        fitted.append({**feature, "impute": impute, "weight": float(feature.get("weight", 1.0))})
    return fitted


def transform(columns: Columns, spec: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The n × d feature matrix of a fitted spec (unscaled, unweighted), missing imputed."""
    n = row_count(columns)
    matrix = np.empty((n, len(spec)))
    for index, feature in enumerate(spec):
        raw = _raw_feature(columns, feature, n)
        matrix[:, index] = np.where(np.isnan(raw), float(feature["impute"]), raw)
    return matrix


def fit_scaler(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """StandardScaler's means and scales (population std; 1.0 where a feature is constant)."""
    n = len(matrix)
    means = matrix.mean(axis=0)
    variances = matrix.var(axis=0)
    # scikit-learn's test for "constant": a variance within the rounding error of the
    # two-pass algorithm, which must not be blown up by dividing by it.
    eps = np.finfo(float).eps
    constant = variances <= n * eps * variances + (n * means * eps) ** 2
    scales = np.where(constant, 1.0, np.sqrt(variances))
    return means, scales


def feature_weights(spec: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Each feature's weight (applied after standard scaling)."""
    return np.array([float(feature.get("weight", 1.0)) for feature in spec])


def same_space(spec: Sequence[Mapping[str, Any]], other: Sequence[Mapping[str, Any]]) -> bool:
    """Whether two specs build the same features (impute values may differ)."""

    def shape(features: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**{k: v for k, v in f.items() if k != "impute"}, "weight": float(f.get("weight", 1.0))}
            for f in features
        ]

    return shape(spec) == shape(other)
