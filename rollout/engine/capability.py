"""Per-request capability segment assignment in plain Python (no numpy, no scikit-learn).

Interprets the segmentation model artifact (segments/ml): the data-driven feature spec,
the scaler's means and scales, per-feature weights and the centroids; the nearest centroid
(weighted-scaled Euclidean distance) names the client's segment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

SAVE_DATA_SEGMENT = "save-data"
Extractor = Callable[[Mapping[str, Any]], float]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _bounds(feature: Mapping[str, Any]) -> tuple[float, float]:
    clip = feature.get("clip")
    if isinstance(clip, Sequence) and len(clip) == 2:
        return float(clip[0]), float(clip[1])
    return float(feature.get("lo", -math.inf)), float(feature.get("hi", math.inf))


def _extractor(feature: Mapping[str, Any]) -> Extractor:
    """One feature of the spec as a function of the raw attributes (transform + impute)."""
    source = str(feature["source"])
    transform = str(feature["transform"])
    impute = float(feature.get("impute", 0.0) or 0.0)
    if transform == "missing":
        return lambda attrs: 1.0 if attrs.get(source) is None else 0.0
    if transform == "at_least":
        threshold = float(feature["threshold"])
        return lambda attrs: 1.0 if (_number(attrs.get(source)) or -math.inf) >= threshold else 0.0
    if transform == "bool":

        def boolean(attrs: Mapping[str, Any]) -> float:
            value = attrs.get(source)
            return impute if value is None else (1.0 if value is True or value == 1 else 0.0)

        return boolean
    if transform == "ordinal":
        levels = {str(k): float(v) for k, v in dict(feature["levels"]).items()}

        def ordinal(attrs: Mapping[str, Any]) -> float:
            level = levels.get(str(attrs.get(source)))
            return impute if level is None else level

        return ordinal
    lo, hi = _bounds(feature)
    function: Callable[[float], float] = {
        "log2": math.log2,
        "log1p": math.log1p,
        "log": math.log,
        "identity": float,
    }[transform]

    def numeric(attrs: Mapping[str, Any]) -> float:
        value = _number(attrs.get(source))
        if value is None:
            return impute
        return function(min(hi, max(lo, value)))

    return numeric


class CapabilityModel:
    """A compiled segmentation model: everything precomputed for a few µs per assignment."""

    __slots__ = ("_centroids", "_features", "keys", "labels", "sources", "version")

    def __init__(self, artifact: Mapping[str, Any]):
        spec = list(artifact["spec"])
        means = [float(m) for m in artifact["means"]]
        scales = [float(s) or 1.0 for s in artifact["scales"]]
        weights = [
            float(w) for w in artifact.get("weights") or [f.get("weight", 1.0) for f in spec]
        ]
        # z = (x - mean) / scale * weight  ==  x * a + b
        self._features = tuple(
            (_extractor(f), w / s, -m * w / s)
            for f, m, s, w in zip(spec, means, scales, weights, strict=True)
        )
        self._centroids = tuple(tuple(float(v) for v in c) for c in artifact["centroids"])
        self.keys = tuple(str(k) for k in artifact["keys"])
        self.labels = tuple(str(k) for k in artifact.get("labels") or artifact["keys"])
        self.sources = frozenset(str(f["source"]) for f in spec)
        self.version = artifact.get("version")

    def nearest(self, attributes: Mapping[str, Any]) -> str:
        """The key of the centroid nearest to the client's features."""
        point = [extract(attributes) * a + b for extract, a, b in self._features]
        best_key, best = self.keys[0], math.inf
        for key, centroid in zip(self.keys, self._centroids, strict=True):
            distance = 0.0
            for x, c in zip(point, centroid, strict=True):
                distance += (x - c) * (x - c)
            if distance < best:
                best_key, best = key, distance
        return best_key


def assign_segment(model: CapabilityModel, attributes: Mapping[str, Any]) -> str | None:
    """The client's segment key: save-data by rule; None when it reports no capability at all."""
    if attributes.get("saveData") is True:
        return SAVE_DATA_SEGMENT
    if model.sources.isdisjoint(attributes):
        return None
    return model.nearest(attributes)
