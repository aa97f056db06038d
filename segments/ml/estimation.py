"""Capability truth for whole populations: measured network first, hidden signals estimated.

Two steps, the same ones rollout/engine/estimates.py takes per request in plain Python (a
test holds the two to each other):

1. `effective_network`: `rttMs` and `downlinkMbps` read the client's own measurement
   (probe.js, native apps) when it has the samples (vocabulary.MIN_*_SAMPLES), else the
   browser's estimate. The measurement is the round trip to the service the cloud rung calls,
   made in every browser; the estimate exists in Chromium only, rounded to 50 ms and capped.
2. `fit_estimator`: for each signal a browser may withhold (ESTIMATED: device memory, which
   Safari and Firefox never report), a decision tree learned on the clients that do report
   it, from what every browser reports (the measured benchmark, mobile, WebGPU, shader-f16).
   Its leaves hold class probabilities: a requirement is met by an estimate only when the
   probability of the classes that meet it clears the flag's threshold.

The estimator is a JSON-able dict (`Estimator.to_json`) that travels inside the segmentation
artifact, so every snapshot carries the one it was fitted with (`version` counts its
format). Trees are evaluated here with numpy on float64, not with scikit-learn's predict
(which rounds inputs to float32): the engine must find the very same leaf.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from capability_probe.vocabulary import (
    BENCHMARK_MS,
    DOWNLINK_MBPS,
    MEASURED_DOWNLINK_MBPS,
    MEASURED_DOWNLINK_SAMPLES,
    MEASURED_RTT_MS,
    MEASURED_RTT_SAMPLES,
    MEMORY_GB,
    MIN_DOWNLINK_SAMPLES,
    MIN_RTT_SAMPLES,
    MOBILE,
    RTT_MS,
    SHADER_F16,
    WEBGPU,
)
from segments.ml.features import Columns, Spec, row_count, transform

ESTIMATOR_VERSION = 1
# The signals estimated when a client does not report them.
ESTIMATED = (MEMORY_GB.wire,)
# What the trees read: signals every browser reports the same way. Cores are left out on
# purpose: WebKit clamps hardwareConcurrency to 4 or 8, so a tree learned on Chromium would
# read every iPhone as a four-core budget phone. A missing input takes MISSING, below every
# value a present one can have.
MISSING = -10.0
INPUT_SPEC: Spec = [
    {
        "name": "benchmark_log",
        "source": BENCHMARK_MS.wire,
        "transform": "log",
        "clip": [0.5, 20000],
        "impute": MISSING,
    },
    {"name": "mobile", "source": MOBILE.wire, "transform": "bool", "impute": MISSING},
    {"name": "webgpu", "source": WEBGPU.wire, "transform": "bool", "impute": MISSING},
    {"name": "shader_f16", "source": SHADER_F16.wire, "transform": "bool", "impute": MISSING},
]
# Leaves of at least MIN_LEAF clients: their shares are probabilities worth stating.
MAX_DEPTH = 6
MIN_LEAF = 200
TRAINING_SAMPLE = 200_000
MIN_TRAINING_ROWS = 2 * MIN_LEAF


def effective_network(columns: Columns) -> dict[str, np.ndarray]:
    """The columns with rttMs and downlinkMbps read from the measurement where it counts."""
    out = dict(columns)
    n = row_count(columns)
    for target, measured, samples, minimum in (
        (RTT_MS, MEASURED_RTT_MS, MEASURED_RTT_SAMPLES, MIN_RTT_SAMPLES),
        (DOWNLINK_MBPS, MEASURED_DOWNLINK_MBPS, MEASURED_DOWNLINK_SAMPLES, MIN_DOWNLINK_SAMPLES),
    ):
        value = np.asarray(columns.get(measured.wire, np.full(n, np.nan)), dtype=float)
        count = np.asarray(columns.get(samples.wire, np.full(n, np.nan)), dtype=float)
        with np.errstate(invalid="ignore"):
            usable = ~np.isnan(value) & (count >= minimum)
        reported = np.asarray(columns.get(target.wire, np.full(n, np.nan)), dtype=float)
        out[target.wire] = np.where(usable, value, reported)
    return out


def _leaf_of(tree: Mapping[str, Sequence[Any]], inputs: np.ndarray) -> np.ndarray:
    """The leaf index of every row (the same walk as the engine's, vectorised)."""
    feature = np.asarray(tree["feature"], dtype=np.int64)
    threshold = np.asarray(tree["threshold"], dtype=float)
    left = np.asarray(tree["left"], dtype=np.int64)
    right = np.asarray(tree["right"], dtype=np.int64)
    node = np.zeros(len(inputs), dtype=np.int64)
    rows = np.arange(len(inputs))
    for _ in range(len(feature)):
        inner = left[node] >= 0
        if not inner.any():
            break
        at = node[inner]
        goes_left = inputs[rows[inner], feature[at]] <= threshold[at]
        node[inner] = np.where(goes_left, left[at], right[at])
    return node


def _export(model: DecisionTreeClassifier, classes: np.ndarray) -> dict[str, Any]:
    tree = model.tree_
    values = np.asarray(tree.value)[:, 0, :]
    probabilities = values / values.sum(axis=1, keepdims=True)
    leaves = tree.children_left < 0
    return {
        "feature": [
            int(f) if not leaf else -1 for f, leaf in zip(tree.feature, leaves, strict=True)
        ],
        "threshold": [
            float(t) if not leaf else 0.0 for t, leaf in zip(tree.threshold, leaves, strict=True)
        ],
        "left": [int(c) for c in tree.children_left],
        "right": [int(c) for c in tree.children_right],
        # Leaves only: inner nodes' shares are never read.
        "probabilities": [
            [round(float(p), 4) for p in row] if leaf else []
            for row, leaf in zip(probabilities, leaves, strict=True)
        ],
        "classes": [float(c) for c in classes],
    }


def _fit_tree(inputs: np.ndarray, labels: np.ndarray, seed: int) -> DecisionTreeClassifier:
    model = DecisionTreeClassifier(
        max_depth=MAX_DEPTH, min_samples_leaf=MIN_LEAF, random_state=seed
    )
    return model.fit(inputs, labels)


def fit_estimator(columns: Columns, *, seed: int) -> dict[str, Any]:
    """An estimator learned on the rows that report each estimated signal (JSON-able).

    A target with too few reporting rows gets no tree: nothing is estimated for it. Each tree
    is scored on a held-out fifth of its rows (`heldOutAccuracy`, the share whose most
    probable class is their reported one), then refitted on all of them.
    """
    rng = np.random.default_rng(seed)
    inputs = transform(columns, INPUT_SPEC)
    has_benchmark = ~np.isnan(np.asarray(columns.get(BENCHMARK_MS.wire), dtype=float))
    targets = []
    for target in ESTIMATED:
        labels = np.asarray(columns.get(target, np.full(row_count(columns), np.nan)), dtype=float)
        rows = np.flatnonzero(~np.isnan(labels) & has_benchmark)
        if rows.size < MIN_TRAINING_ROWS:
            continue
        if rows.size > TRAINING_SAMPLE:
            rows = rng.choice(rows, TRAINING_SAMPLE, replace=False)
        rng.shuffle(rows)
        held_out, train = rows[: rows.size // 5], rows[rows.size // 5 :]

        trained = _fit_tree(inputs[train], labels[train], seed)
        trial = _export(trained, trained.classes_)
        predicted = most_probable(trial, inputs[held_out])
        accuracy = float(np.mean(predicted == labels[held_out])) if held_out.size else 0.0
        model = _fit_tree(inputs[rows], labels[rows], seed)
        targets.append(
            {
                "target": target,
                **_export(model, model.classes_),
                "trainedOn": int(rows.size),
                "heldOutAccuracy": round(accuracy, 4),
            }
        )
    return {"version": ESTIMATOR_VERSION, "inputs": INPUT_SPEC, "targets": targets}


def leaf_probabilities(tree: Mapping[str, Any], inputs: np.ndarray) -> np.ndarray:
    """n × classes: each row's leaf's class probabilities."""
    probabilities = tree["probabilities"]
    leaves = _leaf_of(tree, inputs)
    width = len(tree["classes"])
    table = np.array([row if row else [0.0] * width for row in probabilities], dtype=float)
    return np.asarray(table[leaves])


def most_probable(tree: Mapping[str, Any], inputs: np.ndarray) -> np.ndarray:
    """Each row's most probable class."""
    classes = np.asarray(tree["classes"], dtype=float)
    return np.asarray(classes[leaf_probabilities(tree, inputs).argmax(axis=1)])


def expected_log2(tree: Mapping[str, Any], inputs: np.ndarray) -> np.ndarray:
    """Each row's probability-weighted mean of log2(class): where segmentation places it."""
    logs = np.log2(np.asarray(tree["classes"], dtype=float))
    return np.asarray(leaf_probabilities(tree, inputs) @ logs, dtype=float)


def complete(columns: Columns, estimator: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    """The columns segmentation clusters on: measured network, and every estimated signal a
    row does not report filled in with its estimate (2 ** expected log2, for memory) where
    the row has the benchmark the trees need. Never fed to requirements."""
    out = effective_network(columns)
    if not estimator:
        return out
    n = row_count(columns)
    inputs = transform(columns, estimator["inputs"])
    has_benchmark = ~np.isnan(
        np.asarray(columns.get(BENCHMARK_MS.wire, np.full(n, np.nan)), dtype=float)
    )
    for tree in estimator["targets"]:
        target = str(tree["target"])
        reported = np.asarray(columns.get(target, np.full(n, np.nan)), dtype=float)
        hidden = np.isnan(reported) & has_benchmark
        filled = reported.copy()
        filled[hidden] = np.exp2(expected_log2(tree, inputs[hidden]))
        out[target] = filled
    return out
