"""The data-driven feature spec: its defaults, transforms, imputation and scaler."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from segments.ml.features import (
    CLASS_WEIGHT,
    DEFAULT_FEATURE_SPEC,
    THRESHOLD_WEIGHT,
    feature_weights,
    fit_feature_spec,
    fit_scaler,
    same_space,
    transform,
)

NAN = np.nan


def _columns() -> dict[str, np.ndarray]:
    return {
        "memoryGb": np.array([0.25, 8.0, NAN, 64.0]),
        "rttMs": np.array([0.0, 250.0, NAN, 5000.0]),
        "downlinkMbps": np.array([10.0, 0.5, NAN, 9.95]),
        "effectiveType": np.array(["4g", "3g", None, "5g"], dtype=object),
        "webgpu": np.array([1.0, 0.0, NAN, 1.0]),
    }


SPEC = [
    {"name": "memory", "source": "memoryGb", "transform": "log2", "clip": [0.5, 32]},
    {"name": "memory_missing", "source": "memoryGb", "transform": "missing", "weight": 0.5},
    {"name": "rtt", "source": "rttMs", "transform": "log1p", "clip": [50, 3000]},
    {"name": "rtt_ln", "source": "rttMs", "transform": "log", "clip": [50, 3000]},
    {"name": "capped", "source": "downlinkMbps", "transform": "at_least", "threshold": 10},
    {
        "name": "ect",
        "source": "effectiveType",
        "transform": "ordinal",
        "levels": {"3g": 2, "4g": 3},
    },
    {"name": "ect_missing", "source": "effectiveType", "transform": "missing"},
    {"name": "webgpu", "source": "webgpu", "transform": "bool", "weight": 0.5},
    {"name": "absent", "source": "storageGb", "transform": "log2", "clip": [1, 1024]},
]


def test_default_feature_spec__capability_md__features_and_weights() -> None:
    spec = json.loads(json.dumps(DEFAULT_FEATURE_SPEC))
    by_name = {feature["name"]: feature for feature in spec}

    assert spec == DEFAULT_FEATURE_SPEC  # JSON-able as it stands
    assert {f["source"] for f in spec}.isdisjoint({"saveData", "battery", "os", "browser"})
    flags = [f for f in spec if f["transform"] in {"bool", "missing"}]
    assert {f["name"] for f in flags} == {"webgpu", "shader_f16", "benchmark_missing"}
    assert by_name["webgpu"]["weight"] == CLASS_WEIGHT  # an on-device model needs it
    assert all(f["weight"] == 0.5 for f in flags if f["name"] != "webgpu")
    thresholds = {f["name"]: f for f in spec if f["transform"] == "at_least"}
    assert {(f["source"], f["threshold"]) for f in thresholds.values()} == {
        ("benchmarkMs", 60.0),
        ("rttMs", 300.0),
    }
    assert {f["weight"] for f in thresholds.values()} == {THRESHOLD_WEIGHT}
    measurements = [f for f in spec if f not in flags and f["name"] not in thresholds]
    assert all(f.get("weight", 1.0) == 1.0 for f in measurements)
    assert by_name["memory_log2"]["transform"] == "log2"
    assert by_name["rtt_log1p"]["transform"] == by_name["downlink_log1p"]["transform"] == "log1p"
    # Missingness alone must not make a segment: no feature says "this browser hides it"
    # (segmentation clusters completed columns), and WebKit's clamped cores are not read.
    sources = {f["source"] for f in spec}
    assert {"cores", "effectiveType"}.isdisjoint(sources)
    assert [f["source"] for f in spec if f["transform"] == "missing"] == ["benchmarkMs"]
    assert by_name["benchmark_log"]["transform"] == "log"


def test_transform__each_transform__as_documented() -> None:
    spec = fit_feature_spec(_columns(), SPEC)

    matrix = transform(_columns(), spec)

    memory_impute = float(np.median([-1.0, 3.0, 5.0]))  # log2 of the clipped present values
    rtt_impute = float(np.median([math.log1p(50), math.log1p(250), math.log1p(3000)]))
    rtt_ln_impute = float(np.median([math.log(50), math.log(250), math.log(3000)]))
    expected = np.array(
        [
            [-1.0, 0.0, math.log1p(50), math.log(50), 1.0, 3.0, 0.0, 1.0, 0.0],
            [3.0, 0.0, math.log1p(250), math.log(250), 0.0, 2.0, 0.0, 0.0, 0.0],
            [memory_impute, 1.0, rtt_impute, rtt_ln_impute, 0.0, 2.5, 1.0, 1.0, 0.0],
            [5.0, 0.0, math.log1p(3000), math.log(3000), 0.0, 2.5, 0.0, 1.0, 0.0],
        ]
    )
    np.testing.assert_allclose(matrix, expected)


def test_fit_feature_spec__impute_and_weight__filled_json_able() -> None:
    spec = fit_feature_spec(_columns(), SPEC)

    assert json.loads(json.dumps(spec)) == spec
    assert [f["weight"] for f in spec] == [1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 1.0]
    assert spec[0]["impute"] == 3.0  # median of log2(0.5), log2(8), log2(32)
    assert spec[-1]["impute"] == 0.0  # nobody reports storage
    assert spec[7]["impute"] == 1.0  # WebGPU for two of three reporting
    np.testing.assert_array_equal(feature_weights(spec), [f["weight"] for f in spec])


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"name": "x", "source": "cores", "transform": "sqrt"}, "unknown transform"),
        ({"name": "x", "source": "cores", "transform": "log", "clip": [0, 10]}, "domain"),
    ],
)
def test_fit_feature_spec__invalid_feature__value_error(broken: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_feature_spec(_columns(), [broken])


def test_fit_scaler__matrix__standard_scaler_semantics() -> None:
    rng = np.random.default_rng(0)
    matrix = np.column_stack([rng.normal(3, 2, 500), np.full(500, 0.1), rng.random(500) < 0.3])

    means, scales = fit_scaler(matrix)

    reference = StandardScaler().fit(matrix)
    np.testing.assert_allclose(means, reference.mean_)
    np.testing.assert_allclose(scales, reference.scale_)
    assert scales[1] == 1.0  # a constant feature is not blown up


def test_same_space__impute_differs__same_else_different() -> None:
    fitted = fit_feature_spec(_columns(), SPEC)
    reweighted = [{**f, "weight": 2.0} if f["name"] == "rtt" else f for f in fitted]

    assert same_space(fitted, SPEC)
    assert not same_space(reweighted, SPEC)
    assert not same_space(fitted[:-1], SPEC)
