"""The per-request assigner (rollout/engine/capability.py) against the numpy pipeline."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sklearn.cluster import KMeans

from rollout.engine.capability import SAVE_DATA_SEGMENT, CapabilityModel, assign_segment
from segments.ml.estimation import complete
from segments.ml.features import transform
from segments.ml.segmentation import assign_batch, embed
from tests.support.populations import contexts

ROWS = 10_000


@pytest.fixture(scope="module")
def model(realistic) -> CapabilityModel:
    """The realistic model compiled from its stored (JSON) form, as snapshots carry it."""
    return CapabilityModel(json.loads(json.dumps(realistic.result.artifact.to_json())))


def _sklearn(centroids: np.ndarray) -> KMeans:
    """A fitted KMeans whose cluster centres are exactly `centroids`."""
    kmeans = KMeans(n_clusters=len(centroids), init=centroids, n_init=1, max_iter=1)
    kmeans.fit(centroids)
    kmeans.cluster_centers_ = centroids.copy()
    return kmeans


def test_assign_segment__10k_profiles__agrees_with_numpy_and_sklearn(realistic, model) -> None:
    artifact = realistic.result.artifact
    columns = {name: values[:ROWS] for name, values in realistic.population.columns.items()}
    key_of = dict(zip(artifact.identities, artifact.keys, strict=True))
    clients = contexts(columns, ROWS)
    for client in clients:
        client.pop("saveData", None)  # the hard rule is tested on its own

    by_engine = [assign_segment(model, client) for client in clients]
    by_numpy = [key_of[int(i)] for i in assign_batch(artifact, columns)]
    points = embed(artifact, transform(complete(columns, artifact.estimator), artifact.spec))
    predicted = _sklearn(np.asarray(artifact.centroids)).predict(points)
    by_sklearn = [artifact.keys[i] for i in predicted]

    assert by_engine == by_numpy
    assert by_engine == by_sklearn
    assert len(set(by_engine)) == len(artifact.keys)  # every segment is exercised


def test_assign_segment__save_data__save_data_segment(model) -> None:
    assert assign_segment(model, {"saveData": True, "memoryGb": 8}) == SAVE_DATA_SEGMENT
    assert assign_segment(model, {"saveData": True}) == SAVE_DATA_SEGMENT
    assert assign_segment(model, {"saveData": False, "memoryGb": 8}) in model.keys


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"targetingKey": "client-1", "plan": "pro", "saveData": False},
        {"memoryGb": None, "cores": None},
        {"memoryGb": "8", "cores": float("nan"), "webgpu": "yes"},  # nothing usable
    ],
)
def test_assign_segment__no_capability_reported__none(model, context) -> None:
    assert assign_segment(model, context) is None


def test_assign_segment__missing_fields__imputed_as_numpy_does(realistic, model) -> None:
    artifact = realistic.result.artifact
    key_of = dict(zip(artifact.identities, artifact.keys, strict=True))
    partial = [
        {"memoryGb": 8},
        {"benchmarkMs": 15.0},  # memory estimated
        {"benchmarkMs": 30.0, "mobile": True, "measuredRttMs": 400, "measuredRttSamples": 5},
        {"benchmarkMs": 900.0, "webgpu": False},
        {"effectiveType": "3g", "rttMs": 600},
        {"memoryGb": 2, "effectiveType": "6g"},  # an unknown level is imputed
    ]
    names = list(realistic.population.columns)

    for context in partial:
        column = {
            name: np.array(
                [context.get(name)],
                dtype=object if name == "effectiveType" else float,
            )
            for name in names
        }
        expected = key_of[int(assign_batch(artifact, column)[0])]
        assert assign_segment(model, context) == expected
        assert assign_segment(model, context) == expected  # deterministic


def test_assign_segment__value_types__numbers_and_flags_alike(model) -> None:
    as_int = {"memoryGb": 8, "cores": 8, "benchmarkMs": 40, "webgpu": True, "wasmSimd": 1}
    as_float = {"memoryGb": 8.0, "cores": 8.0, "benchmarkMs": 40.0, "webgpu": 1.0, "wasmSimd": True}
    as_numpy = {name: np.float64(value) for name, value in as_float.items()}

    assert assign_segment(model, as_int) == assign_segment(model, as_float)
    assert assign_segment(model, as_numpy) == assign_segment(model, as_float)
    # A value of the wrong type is missing, not a crash: a boolean is no memory size.
    assert assign_segment(model, {**as_float, "memoryGb": True}) == assign_segment(
        model, {key: value for key, value in as_float.items() if key != "memoryGb"}
    )
    assert assign_segment(model, {**as_float, "webgpu": [1]}) in model.keys


def test_capability_model__artifact__keys_labels_sources(realistic, model) -> None:
    artifact = realistic.result.artifact

    assert model.keys == tuple(artifact.keys)
    assert model.labels == tuple(artifact.labels)
    assert model.sources == {f["source"] for f in artifact.spec}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: {**a, "means": a["means"][:-1]}, "differ in length"),
        (lambda a: {**a, "keys": a["keys"][:-1]}, "one key per centroid"),
        (
            lambda a: {**a, "spec": [{**a["spec"][0], "transform": "sqrt"}, *a["spec"][1:]]},
            "unknown transform",
        ),
        (
            lambda a: {**a, "spec": [{**a["spec"][0], "clip": [0, 32]}, *a["spec"][1:]]},
            "domain",
        ),
    ],
)
def test_capability_model__broken_artifact__value_error(realistic, change, message) -> None:
    with pytest.raises(ValueError, match=message):
        CapabilityModel(change(realistic.result.artifact.to_json()))


def test_assign_segment__many_calls__microseconds_each(realistic, model) -> None:
    columns = {name: values[:2_000] for name, values in realistic.population.columns.items()}
    clients = contexts(columns, 2_000)

    started = time.perf_counter()
    for client in clients:
        assign_segment(model, client)
    per_call = (time.perf_counter() - started) / len(clients)

    # The budget is ~5 µs (bench/segmentation_core_bench.py measures it); this bound only
    # catches a regression by an order of magnitude, such as a scikit-learn call (~300 µs).
    assert per_call < 50e-6
