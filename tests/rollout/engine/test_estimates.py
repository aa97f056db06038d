"""Capability truth per request: measured network and estimated hidden signals.

The engine's plain-Python estimator (rollout/engine/estimates.py) against the numpy one it
is the twin of (segments/ml/estimation.py), and what a ladder does with an estimate.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from rollout.engine.capability import CapabilityModel
from rollout.engine.document import snapshot_from_document
from rollout.engine.estimates import effective_network
from rollout.engine.evaluate import evaluate
from segments.ml import estimation
from segments.ml.features import transform
from segments.ml.population import generate_population
from segments.ml.segmentation import fit_segmentation
from tests.support.populations import SCORE_SAMPLE, contexts

ROWS = 5_000
EDGE = [
    {"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"},
    {"contextName": "benchmarkMs", "operator": "NUM_LTE", "value": "60"},
    {"contextName": "webgpu", "operator": "IN", "values": ["true"]},
]
CLOUD = [{"contextName": "rttMs", "operator": "NUM_LTE", "value": "300"}]
# An iPhone 16 Pro in Safari: no memory, no connection; what probe.js measures.
IPHONE = {
    "targetingKey": "iphone",
    "benchmarkMs": 22.0,
    "webgpu": True,
    "shaderF16": True,
    "mobile": True,
    "cores": 4,
    "measuredRttMs": 40,
    "measuredRttSamples": 5,
}


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Any]:
    population = generate_population(30_000, seed=17)
    result = fit_segmentation(population.columns, previous=None, seed=0, score_sample=SCORE_SAMPLE)
    return population, result


@pytest.fixture(scope="module")
def model(fitted) -> CapabilityModel:
    return CapabilityModel(json.loads(json.dumps(fitted[1].artifact.to_json())))


@pytest.fixture(scope="module")
def artifact(fitted) -> dict[str, Any]:
    """The fitted artifact as snapshots carry it (JSON)."""
    return json.loads(json.dumps(fitted[1].artifact.to_json()))


def _snapshot(artifact: dict[str, Any], **ladder: Any) -> Any:
    ladder = {
        "rungs": [
            {"key": "edge", "requirements": EDGE},
            {"key": "cloud", "requirements": CLOUD},
            {"key": "lite"},
        ],
        "baseline": "lite",
        "safe": "lite",
        **ladder,
    }
    flag = {"key": "smart-compose", "kind": "string", "enabled": True, "ladder": ladder}
    return snapshot_from_document({"flags": [flag], "capabilityModel": artifact})


# --- measured network ------------------------------------------------------------------------


def test_effective_network__measured_with_samples__read_as_rtt_and_downlink() -> None:
    context = {"rttMs": 100, "measuredRttMs": 420, "measuredRttSamples": 5}
    context |= {"downlinkMbps": 10.0, "measuredDownlinkMbps": 42.5, "measuredDownlinkSamples": 1}

    effective = effective_network(context)

    assert (effective["rttMs"], effective["downlinkMbps"]) == (420.0, 42.5)
    assert context["rttMs"] == 100  # the caller's mapping is left as it was


@pytest.mark.parametrize(
    "context",
    [
        {"rttMs": 100},
        {"rttMs": 100, "measuredRttMs": 420, "measuredRttSamples": 2},  # too few samples
        {"rttMs": 100, "measuredRttMs": 420},  # no count: not a measurement to trust
        {"rttMs": 100, "measuredRttMs": "420", "measuredRttSamples": 5},
        {"rttMs": 100, "measuredRttMs": True, "measuredRttSamples": 5},
    ],
)
def test_effective_network__no_usable_measurement__browser_estimate_stays(context) -> None:
    assert effective_network(context)["rttMs"] == 100


def test_effective_network__population__numpy_and_engine_agree() -> None:
    population = generate_population(ROWS, seed=3)
    columns = dict(population.columns)
    # Vary the sample counts so that both branches are taken.
    columns["measuredRttSamples"] = np.resize(np.array([1.0, 3.0, 5.0, np.nan]), ROWS)

    by_numpy = estimation.effective_network(columns)
    for row, client in enumerate(contexts(columns, ROWS)):
        effective = effective_network(client)
        for name in ("rttMs", "downlinkMbps"):
            expected = by_numpy[name][row]
            assert (effective.get(name) is None) == math.isnan(expected), (row, name)
            if not math.isnan(expected):
                assert effective[name] == expected


# --- the estimator -------------------------------------------------------------------------


def test_estimator__hidden_memory__engine_and_numpy_find_the_same_leaf(fitted, model) -> None:
    population, result = fitted
    estimator = result.artifact.estimator
    (tree,) = estimator["targets"]
    hidden = np.flatnonzero(np.isnan(population.columns["memoryGb"]))[:ROWS]
    columns = {name: values[hidden] for name, values in population.columns.items()}
    expected = estimation.leaf_probabilities(tree, transform(columns, estimator["inputs"]))

    assert model.estimator is not None
    for row, client in enumerate(contexts(columns, len(hidden))):
        estimate = model.estimator.estimate(client)["memoryGb"]
        assert estimate.probabilities == tuple(expected[row])
        assert estimate.classes == tuple(tree["classes"])


def test_estimator__fitted__states_its_held_out_accuracy(fitted) -> None:
    (tree,) = fitted[1].artifact.estimator["targets"]

    assert tree["target"] == "memoryGb"
    assert tree["trainedOn"] > 10_000
    assert tree["heldOutAccuracy"] > 0.8  # classes of memory, not the ≥ 4 GB question
    assert all(
        min(p) >= 0 and math.isclose(sum(p), 1, abs_tol=1e-3) for p in tree["probabilities"] if p
    )


def test_estimator__reported_or_no_benchmark__nothing_estimated(model) -> None:
    assert model.estimator is not None
    assert model.estimator.estimate({**IPHONE, "memoryGb": 8}) == {}
    assert (
        model.estimator.estimate({key: v for key, v in IPHONE.items() if key != "benchmarkMs"})
        == {}
    )


# --- decisions -----------------------------------------------------------------------------


def test_ladder__safari_iphone__edge_from_an_estimate_and_says_so(artifact) -> None:
    decision = evaluate(_snapshot(artifact), "smart-compose", IPHONE)

    assert decision.variant == "edge"
    assert decision.metadata["estimated"] == "memoryGb"


def test_ladder__without_the_measurement__safari_gets_lite_as_before(artifact) -> None:
    iphone = {k: v for k, v in IPHONE.items() if not k.startswith("measured")}

    decision = evaluate(_snapshot(artifact), "smart-compose", {**iphone, "webgpu": False})

    assert decision.variant == "lite"
    assert decision.unmet == {"edge": ("webgpu in [true]",), "cloud": ("rttMs ≤ 300",)}


def test_ladder__measured_rtt__cloud_for_a_browser_without_connection(artifact) -> None:
    slow_phone = {**IPHONE, "benchmarkMs": 700.0, "webgpu": False, "shaderF16": False}

    fast = evaluate(_snapshot(artifact), "smart-compose", slow_phone)
    throttled = evaluate(_snapshot(artifact), "smart-compose", {**slow_phone, "measuredRttMs": 900})

    assert (fast.variant, throttled.variant) == ("cloud", "lite")
    assert throttled.unmet["cloud"] == ("rttMs ≤ 300",)


def test_ladder__estimate_not_confident_enough__unmet_with_its_confidence(artifact) -> None:
    decision = evaluate(_snapshot(artifact, minConfidence=1.0), "smart-compose", IPHONE)

    assert decision.variant == "cloud"
    (reason,) = decision.unmet["edge"]
    assert reason.startswith("memoryGb ≥ 4 (estimated: ")
    assert reason.endswith("likely, 100% needed)")
    assert decision.metadata["estimated"] == "memoryGb"


def test_ladder__reported_memory__wins_over_any_estimate(artifact) -> None:
    decision = evaluate(_snapshot(artifact), "smart-compose", {**IPHONE, "memoryGb": 2})

    assert decision.variant == "cloud"
    assert decision.unmet == {"edge": ("memoryGb ≥ 4",)}
    assert "estimated" not in decision.metadata


def test_rules__never_read_an_estimate(artifact) -> None:
    """An estimate meets capability requirements only: a targeting rule on memoryGb still
    sees a client that did not report it."""
    document = {
        "flags": [
            {
                "key": "big-memory-only",
                "enabled": True,
                "rules": [
                    {
                        "strategy": "default",
                        "constraints": [
                            {"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"}
                        ],
                    }
                ],
            }
        ],
        "capabilityModel": artifact,
    }

    decision = evaluate(snapshot_from_document(document), "big-memory-only", IPHONE)

    assert decision.enabled is False
