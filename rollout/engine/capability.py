"""Per-request capability segment assignment in plain Python (no numpy, no scikit-learn).

Interprets the segmentation model artifact (`ModelArtifact.to_json()` of
segments/ml/segmentation.py): the data-driven feature spec (segments/ml/features.py
documents the transforms), the scaler's means and scales, per-feature weights and the
centroids. The nearest centroid (weighted-scaled Euclidean distance) names the client's
segment. Everything that does not depend on the client is computed when the model is
compiled, so an assignment is one small function per profile field and one `math.dist`
per centroid.

Attribute values follow the profile's types: numbers as int or float, booleans as bool,
strings as str. A value of another type, or NaN, counts as missing (as NaN and None do in
segments/ml's columns) and is imputed exactly as there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any

from capability_probe.vocabulary import SAVE_DATA
from capability_probe.vocabulary import SAVE_DATA_IDENTITY as SAVE_DATA_IDENTITY
from capability_probe.vocabulary import SAVE_DATA_SEGMENT as SAVE_DATA_SEGMENT
from rollout.engine.estimates import Estimate, Estimator, effective_network

Coordinates = tuple[float, ...]
Feature = Callable[[Any], float]  # a present, parsed value -> one coordinate
# A raw attribute -> its features' coordinates; missing values get the field's `absent`.
Extractor = Callable[[Any], Coordinates]

_LOGS: dict[str, Callable[[float], float]] = {
    "log2": math.log2,
    "log1p": math.log1p,
    "log": math.log,
}
_LOG_DOMAIN_FLOOR = {"log2": 0.0, "log1p": -1.0, "log": 0.0}
# How a transform reads its source; "missing" reads any kind.
_KIND_OF_TRANSFORM = {
    "ordinal": "text",
    "bool": "flag",
    "at_least": "number",
    **dict.fromkeys(_LOGS, "number"),
}


def _number(value: Any) -> float | None:
    if value.__class__ is float:  # the common case first: this runs on every request
        return value if math.isfinite(value) else None
    # bool is an int to Python, but a flag where a measurement belongs is no measurement.
    if value.__class__ is bool or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _flag(value: Any) -> float | None:
    if value.__class__ is bool:
        return 1.0 if value else 0.0
    number = _number(value)
    # segments/ml reads a boolean column of floats as "> 0.5".
    return None if number is None else (1.0 if number > 0.5 else 0.0)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _anything(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "number": _number,
    "flag": _flag,
    "text": _text,
    "any": _anything,
}


def _source_kinds(spec: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """How each source is parsed, from the transforms that read it (in spec order)."""
    kinds: dict[str, str] = {}
    for feature in spec:
        source = str(feature["source"])
        kind = _KIND_OF_TRANSFORM.get(str(feature["transform"]), "any")
        known = kinds.setdefault(source, kind)
        if known == "any":
            kinds[source] = kind
        elif kind not in ("any", known):
            raise ValueError(f"source {source!r} is read both as {known} and as {kind}")
    return kinds


def _feature(feature: Mapping[str, Any], mean: float, factor: float) -> tuple[Feature, float]:
    """(coordinate of a present value, coordinate when missing) of one feature."""

    def z(x: float) -> float:
        # (x - mean) * (weight / scale): the very expression segments/ml evaluates.
        return (x - mean) * factor

    transform = str(feature["transform"])
    impute = z(float(feature.get("impute", 0.0)))
    if transform == "missing":
        present = z(0.0)
        return (lambda _value: present), z(1.0)
    if transform == "at_least":
        threshold, above, below = float(feature["threshold"]), z(1.0), z(0.0)
        return (lambda value: above if value >= threshold else below), below
    if transform == "bool":
        return {1.0: z(1.0), 0.0: z(0.0)}.__getitem__, impute
    if transform == "ordinal":
        by_level = {str(level): z(float(code)) for level, code in dict(feature["levels"]).items()}
        return (lambda value: by_level.get(value, impute)), impute
    if transform not in _LOGS:
        raise ValueError(f"unknown transform {transform!r} in feature {feature.get('name')!r}")
    log = _LOGS[transform]
    lo, hi = (float(bound) for bound in feature["clip"])
    if lo <= _LOG_DOMAIN_FLOOR[transform]:
        raise ValueError(f"clip floor of {feature.get('name')!r} is outside the log's domain")

    def logarithm(value: float) -> float:
        clipped = lo if value < lo else hi if value > hi else value
        return (log(clipped) - mean) * factor

    return logarithm, impute


def _extractor(kind: str, features: Sequence[Feature], absent: Coordinates) -> Extractor:
    """A raw attribute -> the coordinates of the features read from it."""
    parse = _PARSERS[kind]
    if kind in ("flag", "text"):
        # Few values reach the features (two flags, a handful of levels): look their
        # coordinates up instead of computing them on every request.
        cache: dict[Any, Coordinates] = {}

        def lookup(raw: Any) -> Coordinates:
            try:
                # True == 1.0 and hashes alike, so a raw flag or level finds its entry.
                coordinates = cache.get(raw)
            except TypeError:  # an unhashable value (a list, a dict) is no flag or level
                return absent
            if coordinates is not None:
                return coordinates
            value = parse(raw)
            if value is None:
                return absent
            coordinates = cache.get(value)
            if coordinates is None:
                coordinates = tuple(feature(value) for feature in features)
                if len(cache) < 64:  # unknown strings must not grow it without bound
                    cache[value] = coordinates
            return coordinates

        return lookup
    if len(features) == 1:
        (only,) = features
        return lambda raw: absent if (value := parse(raw)) is None else (only(value),)
    if len(features) == 2:
        first, second = features
        return lambda raw: (
            absent if (value := parse(raw)) is None else (first(value), second(value))
        )
    return lambda raw: (
        absent if (value := parse(raw)) is None else tuple(feature(value) for feature in features)
    )


class CapabilityModel:
    """A compiled segmentation model: everything precomputed for a few µs per assignment."""

    __slots__ = ("_centroids", "_fields", "estimator", "keys", "labels", "sources")

    def __init__(self, artifact: Mapping[str, Any]) -> None:
        spec = [dict(feature) for feature in artifact["spec"]]
        means = [float(m) for m in artifact["means"]]
        scales = [float(s) for s in artifact["scales"]]
        weights = [float(w) for w in artifact["weights"]]
        if not len(spec) == len(means) == len(scales) == len(weights):
            raise ValueError("spec, means, scales and weights differ in length")
        # Features are regrouped by source (one parse per field); the centroids' coordinates
        # are permuted the same way, which leaves every distance as it was.
        order: list[int] = []
        fields: list[tuple[str, Extractor, Coordinates]] = []
        for source, kind in _source_kinds(spec).items():
            indices = [i for i, f in enumerate(spec) if f["source"] == source]
            compiled = [_feature(spec[i], means[i], weights[i] / scales[i]) for i in indices]
            absent = tuple(missing for _, missing in compiled)
            extract = _extractor(kind, [present for present, _ in compiled], absent)
            fields.append((source, extract, absent))
            order.extend(indices)
        self._fields = tuple(fields)
        keys = [str(key) for key in artifact["keys"]]
        centroids = [[float(c) for c in centroid] for centroid in artifact["centroids"]]
        if not keys or len(keys) != len(centroids):
            raise ValueError("a model needs one key per centroid, and at least one centroid")
        self._centroids = tuple(tuple(centroid[i] for i in order) for centroid in centroids)
        self.keys = tuple(keys)
        self.labels = tuple(str(label) for label in artifact.get("labels") or keys)
        self.sources = frozenset(source for source, _, _ in fields)
        raw_estimator = artifact.get("estimator")
        self.estimator = Estimator(raw_estimator, _input) if raw_estimator else None

    def completed(
        self, attributes: Mapping[str, Any]
    ) -> tuple[Mapping[str, Any], dict[str, Estimate]]:
        """The attributes with the measured network in place, and estimates of the signals
        the client does not report (segments/ml/estimation.py's `complete`, per request)."""
        attributes = effective_network(attributes)
        estimates = self.estimator.estimate(attributes) if self.estimator is not None else {}
        return attributes, estimates

    def point(self, attributes: Mapping[str, Any]) -> list[float] | None:
        """The client in the weighted, scaled space; None when it reports no field at all."""
        point: list[float] = []
        reported = False
        get = attributes.get
        for source, extract, absent in self._fields:
            coordinates = extract(get(source))
            if coordinates is not absent:
                reported = True
            point += coordinates
        return point if reported else None

    def nearest(self, point: Sequence[float]) -> str:
        """The key of the centroid nearest to `point` (the first one on a tie, as argmin)."""
        distances = list(map(math.dist, repeat(point), self._centroids))
        return self.keys[distances.index(min(distances))]


def _input(feature: Mapping[str, Any]) -> Callable[[Any], float]:
    """One estimator input: a raw attribute -> its transformed value (unscaled), or the
    feature's impute when missing."""
    kind = _KIND_OF_TRANSFORM.get(str(feature["transform"]), "any")
    present, missing = _feature(feature, 0.0, 1.0)
    extract = _extractor(kind, [present], (missing,))
    return lambda raw: extract(raw)[0]


def assign_completed(
    model: CapabilityModel, attributes: Mapping[str, Any], estimates: Mapping[str, Estimate]
) -> str | None:
    """The segment of attributes already `completed`: estimates stand in for what the client
    does not report, so that segments follow devices rather than what browsers hide."""
    if _flag(attributes.get(SAVE_DATA.wire)) == 1.0:
        return SAVE_DATA_SEGMENT  # an explicit user wish, outside the model
    if estimates:
        attributes = {**attributes, **{name: e.point for name, e in estimates.items()}}
    point = model.point(attributes)
    return None if point is None else model.nearest(point)


def assign_segment(model: CapabilityModel, attributes: Mapping[str, Any]) -> str | None:
    """The client's segment key: save-data by rule; None when it reports no capability."""
    return assign_completed(model, *model.completed(attributes))
