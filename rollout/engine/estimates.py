"""Capability truth per request, in plain Python: measured network, estimated hidden signals.

The per-request twin of segments/ml/estimation.py (its docstring has the method; a test
holds the two to each other):

- `effective_network`: `rttMs` and `downlinkMbps` read the client's own measurement when it
  has the samples, else the browser's estimate (which Safari and Firefox never give).
- `Estimator`: the decision trees of the segmentation artifact's `estimator`, walked per
  request for the estimated signals a client does not report. An `Estimate` is a class
  distribution, never a value: a requirement is met by it only when the probability of the
  classes that meet it clears the flag's threshold (rollout/engine/ladder.py), and it is
  never written back into the context a rule reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from capability_probe.vocabulary import (
    BENCHMARK_MS,
    DOWNLINK_MBPS,
    MEASURED_DOWNLINK_MBPS,
    MEASURED_DOWNLINK_SAMPLES,
    MEASURED_RTT_MS,
    MEASURED_RTT_SAMPLES,
    MIN_DOWNLINK_SAMPLES,
    MIN_RTT_SAMPLES,
    RTT_MS,
)

# (attribute requirements read, the measurement, its sample count, the samples it needs)
_MEASURED = (
    (RTT_MS.wire, MEASURED_RTT_MS.wire, MEASURED_RTT_SAMPLES.wire, MIN_RTT_SAMPLES),
    (
        DOWNLINK_MBPS.wire,
        MEASURED_DOWNLINK_MBPS.wire,
        MEASURED_DOWNLINK_SAMPLES.wire,
        MIN_DOWNLINK_SAMPLES,
    ),
)
_MEASURED_NAMES = frozenset(measured for _, measured, _, _ in _MEASURED)


def _number(value: Any) -> float | None:
    if value.__class__ is bool or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def effective_network(attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    """The attributes with rttMs and downlinkMbps taken from the measurement where it counts
    (the same mapping when the client measured nothing: the common Chromium-only case)."""
    if _MEASURED_NAMES.isdisjoint(attributes):
        return attributes
    out: dict[str, Any] | None = None
    for target, measured, samples, minimum in _MEASURED:
        value = _number(attributes.get(measured))
        count = _number(attributes.get(samples))
        if value is None or count is None or count < minimum:
            continue
        if out is None:
            out = dict(attributes)
        out[target] = value
    return attributes if out is None else out


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a hidden signal probably is: its classes and their probabilities."""

    classes: tuple[float, ...]
    probabilities: tuple[float, ...]

    def confidence(self, holds: Callable[[float], bool]) -> float:
        """The probability that the signal is one of the classes for which `holds`."""
        return sum(p for c, p in zip(self.classes, self.probabilities, strict=True) if holds(c))

    @property
    def point(self) -> float:
        """2 ** the expected log2: where segmentation places the client (never a requirement's
        value)."""
        return 2 ** sum(
            p * math.log2(c) for c, p in zip(self.classes, self.probabilities, strict=True)
        )


@dataclass(frozen=True, slots=True)
class _Tree:
    target: str
    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    leaves: Mapping[int, Estimate]

    def estimate(self, inputs: Sequence[float]) -> Estimate:
        node, left = 0, self.left
        while left[node] >= 0:
            node = (
                left[node]
                if inputs[self.feature[node]] <= self.threshold[node]
                else self.right[node]
            )
        return self.leaves[node]


def _tree(raw: Mapping[str, Any]) -> _Tree:
    classes = tuple(float(c) for c in raw["classes"])
    left = tuple(int(c) for c in raw["left"])
    leaves = {
        node: Estimate(classes, tuple(float(p) for p in raw["probabilities"][node]))
        for node, child in enumerate(left)
        if child < 0
    }
    return _Tree(
        str(raw["target"]),
        tuple(int(f) for f in raw["feature"]),
        tuple(float(t) for t in raw["threshold"]),
        left,
        tuple(int(c) for c in raw["right"]),
        leaves,
    )


Input = Callable[[Any], float]


class Estimator:
    """The compiled estimator of a segmentation artifact: a few µs for a hidden client."""

    __slots__ = ("_inputs", "_trees", "targets")

    def __init__(self, raw: Mapping[str, Any], compile_input: Callable[[Mapping[str, Any]], Input]):
        # `compile_input` turns one input feature of the spec into raw value -> coordinate
        # (rollout/engine/capability.py's feature functions, unscaled: the trees split on
        # the transformed values themselves).
        self._inputs = tuple(
            (str(feature["source"]), compile_input(feature)) for feature in raw["inputs"]
        )
        self._trees = tuple(_tree(tree) for tree in raw.get("targets") or ())
        self.targets = frozenset(tree.target for tree in self._trees)

    def estimate(self, attributes: Mapping[str, Any]) -> dict[str, Estimate]:
        """An estimate of every estimated signal the client does not report; none without
        the measured benchmark the trees need."""
        get = attributes.get
        hidden = [tree for tree in self._trees if _absent(get(tree.target))]
        if not hidden or _number(get(BENCHMARK_MS.wire)) is None:
            return {}
        inputs = [convert(get(source)) for source, convert in self._inputs]
        return {tree.target: tree.estimate(inputs) for tree in hidden}


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
