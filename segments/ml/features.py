"""The feature pipeline of capability.md, as a data-driven spec.

The same spec travels with the model into every snapshot, where rollout/engine/capability.py
interprets it in plain Python per request; here it is interpreted with numpy for whole
populations. A test keeps the two in agreement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

FEATURE_VERSION = 1
Spec = list[dict[str, Any]]
EFFECTIVE_TYPE_LEVELS = {"slow-2g": 0, "2g": 1, "3g": 2, "4g": 3}

DEFAULT_FEATURE_SPEC: Spec = [
    # Device memory arrives bucketed (powers of two): log2 makes the buckets equidistant.
    {"name": "memory_log2", "source": "memoryGb", "transform": "log2", "clip": [0.25, 32]},
    {"name": "memory_missing", "source": "memoryGb", "transform": "missing", "weight": 0.5},
    {"name": "cores_log2", "source": "cores", "transform": "log2", "clip": [1, 64]},
    # Network at reduced weight: it varies from hour to hour for the same device, and the
    # ladder's cloud rung reads RTT directly; segments should follow the device first.
    # Chromium rounds RTT to 50 ms, so a fast link reads 0: clip at half a step, or 0 and 50
    # would sit a whole log unit apart.
    {
        "name": "rtt_log1p",
        "source": "rttMs",
        "transform": "log1p",
        "clip": [25, 3000],
        "weight": 0.75,
    },
    {
        "name": "downlink_log1p",
        "source": "downlinkMbps",
        "transform": "log1p",
        "clip": [0, 10],
        "weight": 0.5,
    },
    # Chromium caps downlink at 10 Mbps: "at the cap" is a category of its own.
    {
        "name": "downlink_at_cap",
        "source": "downlinkMbps",
        "transform": "at_least",
        "threshold": 10,
        "weight": 0.5,
    },
    {"name": "network_missing", "source": "rttMs", "transform": "missing", "weight": 0.5},
    {
        "name": "effective_type",
        "source": "effectiveType",
        "transform": "ordinal",
        "levels": EFFECTIVE_TYPE_LEVELS,
        "weight": 0.75,
    },
    # Booleans at half weight, so a pile of flags does not dominate distances.
    {"name": "webgpu", "source": "webgpu", "transform": "bool", "weight": 0.5},
    {"name": "shader_f16", "source": "shaderF16", "transform": "bool", "weight": 0.5},
    {"name": "webnn", "source": "webnn", "transform": "bool", "weight": 0.5},
    {"name": "wasm_simd", "source": "wasmSimd", "transform": "bool", "weight": 0.5},
    {"name": "mobile", "source": "mobile", "transform": "bool", "weight": 0.5},
    # The measured reference workload is the most honest signal: full weight and then some.
    {
        "name": "benchmark_log",
        "source": "benchmarkMs",
        "transform": "log",
        "clip": [0.5, 20000],
        "weight": 1.5,
    },
    {"name": "benchmark_missing", "source": "benchmarkMs", "transform": "missing", "weight": 0.5},
]


def _numeric(columns: Mapping[str, np.ndarray], source: str, n: int) -> np.ndarray:
    values = columns.get(source)
    if values is None:
        return np.full(n, np.nan)
    return np.asarray(values, dtype=float)


def _raw_feature(
    columns: Mapping[str, np.ndarray], feature: Mapping[str, Any], n: int
) -> np.ndarray:
    """One feature before imputation: NaN where the source is missing (except flags)."""
    source = str(feature["source"])
    transform = str(feature["transform"])
    if transform == "ordinal":
        levels = {str(k): float(v) for k, v in dict(feature["levels"]).items()}
        raw = columns.get(source)
        if raw is None:
            return np.full(n, np.nan)
        return np.array(
            [levels.get(str(v), np.nan) if v is not None else np.nan for v in raw], dtype=float
        )
    values = _numeric(columns, source, n)
    if transform == "missing":
        return np.asarray(np.isnan(values), dtype=float)
    if transform == "at_least":
        return np.where(
            np.isnan(values), 0.0, (values >= float(feature["threshold"])).astype(float)
        )
    if transform == "bool":
        return np.asarray(np.where(np.isnan(values), np.nan, values > 0.5), dtype=float)
    lo, hi = feature.get("clip", [-np.inf, np.inf])
    clipped = np.clip(values, float(lo), float(hi))
    functions = {"log2": np.log2, "log1p": np.log1p, "log": np.log}
    if transform in functions:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(functions[transform](clipped), dtype=float)
    if transform == "identity":
        return np.asarray(clipped, dtype=float)
    raise ValueError(f"unknown transform {transform!r} in feature {feature['name']!r}")


def fit_feature_spec(
    columns: Mapping[str, np.ndarray], spec: Sequence[Mapping[str, Any]] = DEFAULT_FEATURE_SPEC
) -> Spec:
    """The spec with each feature's `impute` (median of present values) and `weight` set."""
    n = len(next(iter(columns.values())))
    fitted: Spec = []
    for feature in spec:
        raw = _raw_feature(columns, feature, n)
        present = raw[~np.isnan(raw)]
        impute = float(np.median(present)) if present.size else 0.0
        fitted.append({**feature, "impute": impute, "weight": float(feature.get("weight", 1.0))})
    return fitted


def transform(columns: Mapping[str, np.ndarray], spec: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The n x d feature matrix (unscaled, unweighted), missing values imputed."""
    n = len(next(iter(columns.values())))
    matrix = np.empty((n, len(spec)))
    for index, feature in enumerate(spec):
        raw = _raw_feature(columns, feature, n)
        matrix[:, index] = np.where(np.isnan(raw), float(feature.get("impute", 0.0)), raw)
    return matrix


def scaler(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """StandardScaler's means and scales (a constant feature gets scale 1)."""
    means = matrix.mean(axis=0)
    scales = matrix.std(axis=0)
    scales[scales == 0] = 1.0
    return means, scales
