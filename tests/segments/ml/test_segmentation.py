"""Fitting segments: planted tiers recovered, stable identities, new tiers flagged, labels."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from segments.ml.features import FEATURE_VERSION
from segments.ml.population import generate_population
from segments.ml.segmentation import (
    SAVE_DATA_KEY,
    KScore,
    ModelArtifact,
    assign_batch,
    choose_k,
    fit_segmentation,
    label_for,
    labels_for,
    planted_agreement,
    unique_key,
)
from tests.support.populations import PLANTED, SCORE_SAMPLE, fit

WEIGHTS = {"low-phone": 0.18, "mid-phone": 0.3, "high-phone": 0.14, "laptop": 0.23, "desktop": 0.15}


def test_fit_segmentation__planted_tiers__recovered_ari_at_least_0_9(planted) -> None:
    result = planted.result

    assert 4 <= result.k <= 8
    assert planted_agreement(result.assignments, planted.population.tiers) >= 0.9


def test_fit_segmentation__planted_tiers_other_seeds__recovered_ari_at_least_0_9() -> None:
    population = generate_population(40_000, seed=21, **PLANTED)

    result = fit(population, seed=7)

    assert planted_agreement(result.assignments, population.tiers) >= 0.9


def test_fit_segmentation__rerun_with_previous__identities_and_keys_stay(realistic) -> None:
    first = realistic.result

    second = fit(realistic.population, previous=first.artifact, seed=3, next_identity=100)

    assert second.new_identities == []
    assert np.mean(first.assignments == second.assignments) >= 0.99
    first_keys = dict(zip(first.artifact.identities, first.artifact.keys, strict=True))
    assert dict(zip(second.artifact.identities, second.artifact.keys, strict=True)) == first_keys
    # The scaler is the previous one, so the centroids are comparable.
    assert second.artifact.means == first.artifact.means
    assert second.artifact.scales == first.artifact.scales


def test_fit_segmentation__new_tier_planted__new_identity_flagged_for_review(planted) -> None:
    first = planted.result
    population = generate_population(
        60_000, seed=6, tier_weights={**WEIGHTS, "npu-phone": 0.1}, **PLANTED
    )

    second = fit(population, previous=first.artifact, next_identity=50)

    assert second.new_identities
    assert min(second.new_identities) >= 50
    assert set(second.new_identities).isdisjoint(first.artifact.identities)
    new_rows = np.isin(second.assignments, second.new_identities)
    npu = population.tiers == "npu-phone"
    assert np.mean(npu[new_rows]) >= 0.9  # the new identity is the planted tier...
    assert np.mean(new_rows[npu]) >= 0.9  # ...and holds nearly all of it
    # Every other tier keeps an identity it had.
    old_rows = ~new_rows
    assert set(second.assignments[old_rows]) <= set(first.artifact.identities)
    new_keys = {
        key
        for identity, key in zip(second.artifact.identities, second.artifact.keys, strict=True)
        if identity in second.new_identities
    }
    assert new_keys.isdisjoint(first.artifact.keys)


def test_fit_segmentation__incompatible_previous__identities_matched_by_members(planted) -> None:
    first = planted.result
    older = dataclasses.replace(first.artifact, feature_version=FEATURE_VERSION - 1)

    second = fit(planted.population, previous=older, seed=1, next_identity=100)

    shared = np.isin(second.assignments, first.artifact.identities)
    assert np.mean(shared) >= 0.9
    assert np.mean(second.assignments == first.assignments) >= 0.9
    assert second.artifact.feature_version == FEATURE_VERSION


def test_fit_segmentation__same_seed__same_model(planted) -> None:
    again = fit(planted.population)

    assert again.artifact == planted.result.artifact
    assert np.array_equal(again.assignments, planted.result.assignments)


def test_fit_segmentation__result__consistent_figures(realistic) -> None:
    result = realistic.result
    artifact = result.artifact
    n = len(realistic.population.tiers)

    assert len(artifact.centroids) == len(artifact.identities) == len(artifact.keys) == result.k
    assert len(artifact.labels) == result.k == len(set(artifact.keys))
    assert all(len(c) == len(artifact.spec) for c in artifact.centroids)
    assert SAVE_DATA_KEY not in artifact.keys
    assert sum(result.sizes.values()) == n
    assert result.sizes == {i: int(np.sum(result.assignments == i)) for i in artifact.identities}
    assert set(result.centroid_profiles) == set(artifact.identities)
    assert set(result.k_scores) == set(range(4, 9))
    assert -1 <= result.silhouette <= 1
    assert result.calinski_harabasz > 0
    assert 0 <= result.stability <= 1
    assert {"features", "choose_k", "fit", "label", "match", "profile"} <= set(result.timings)
    assert result.new_identities == artifact.identities  # a first run: everything is new


def test_fit_segmentation__labels__from_the_member_profiles(realistic) -> None:
    result = realistic.result
    artifact = result.artifact
    columns = realistic.population.columns

    for identity in artifact.identities:
        members = result.assignments == identity
        profile = result.centroid_profiles[identity]
        assert profile["clients"] == members.sum()
        assert profile["benchmarkMs"] == round(float(np.median(columns["benchmarkMs"][members])), 2)
    assert artifact.labels == labels_for(
        [result.centroid_profiles[identity] for identity in artifact.identities]
    )
    assert len(set(artifact.labels)) == len(artifact.labels)  # no two clusters alike
    # A new cluster's key is its label, made unique.
    for key, label in zip(artifact.keys, artifact.labels, strict=True):
        assert key == label or key.startswith(f"{label}-")


def test_fit_segmentation__reserved_keys__new_keys_avoid_them(planted) -> None:
    reserved = set(planted.result.artifact.labels)

    result = fit(planted.population, reserved_keys=reserved)

    assert reserved.isdisjoint(result.artifact.keys)


def test_fit_segmentation__too_few_rows__value_error() -> None:
    population = generate_population(50, seed=0)

    with pytest.raises(ValueError, match="cannot choose k"):
        fit_segmentation(population.columns, previous=None, seed=0, score_sample=SCORE_SAMPLE)


def test_assign_batch__small_batches__same_as_one_batch(realistic) -> None:
    artifact = realistic.result.artifact

    in_batches = assign_batch(artifact, realistic.population.columns, batch=7_000)

    assert np.array_equal(in_batches, realistic.result.assignments)


def test_model_artifact__json_round_trip__equal(realistic) -> None:
    artifact = realistic.result.artifact

    stored = json.loads(json.dumps(artifact.to_json()))

    assert ModelArtifact.from_json(stored) == artifact
    assert stored["featureVersion"] == FEATURE_VERSION


@pytest.mark.parametrize(
    ("profile", "label"),
    [
        ({"benchmarkMs": 20.0, "webgpuShare": 0.9, "mobileShare": 0.0}, "fast-computers-webgpu"),
        ({"benchmarkMs": 40.0, "webgpuShare": 0.1, "mobileShare": 0.9}, "fast-phones"),
        ({"benchmarkMs": 160.0, "webgpuShare": 0.6, "mobileShare": 1.0}, "mid-phones-webgpu"),
        ({"benchmarkMs": 700.0, "mobileShare": 1.0, "rttMs": 300.0}, "slow-phones-weak-network"),
        (
            {"benchmarkMs": 160.0, "mobileShare": 1.0, "downlinkMbps": 0.7},
            "mid-phones-weak-network",
        ),
        ({"benchmarkMs": 700.0, "rttMs": 50.0, "downlinkMbps": 5.0}, "slow-computers"),
        # No benchmark: nothing says the device is fast.
        ({"benchmarkMs": None, "webgpuShare": 1.0, "memoryGb": 32.0}, "slow-computers-webgpu"),
    ],
)
def test_label_for__profile__named_by_rules(profile: dict, label: str) -> None:
    assert label_for(profile) == label


def test_labels_for__look_alikes__told_apart_by_what_differs() -> None:
    fast_big = {"benchmarkMs": 10.0, "webgpuShare": 0.9, "memoryGb": 16.0, "rttMs": 20.0}
    fast_small = {**fast_big, "memoryGb": 8.0}
    phones = {"benchmarkMs": 700.0, "mobileShare": 1.0, "rttMs": 50.0}

    labels = labels_for([fast_big, fast_small, phones])

    # The look-alikes differ in memory class only: that is what their labels add; the third
    # has no look-alike and keeps its plain label.
    assert labels == [
        "fast-computers-webgpu-good-network-16gb",
        "fast-computers-webgpu-good-network-8gb",
        "slow-phones",
    ]
    # Alike in everything: one label (unique_key then numbers the keys).
    assert labels_for([phones, dict(phones)]) == ["slow-phones-no-webgpu-good-network-rtt-50ms"] * 2


def test_unique_key__taken__suffixed() -> None:
    taken = {"edge-ready", "edge-ready-2"}

    assert unique_key("edge-ready", taken) == "edge-ready-3"
    assert unique_key("cloud-only", taken) == "cloud-only"
    assert {"edge-ready-3", "cloud-only"} <= taken


def _scores(table: dict[int, tuple[float, float, float]]) -> dict[int, KScore]:
    return {k: KScore(*values) for k, values in table.items()}


@pytest.mark.parametrize(
    ("table", "previous_k", "chosen"),
    [
        # The best silhouette among stable k, unstable k ignored.
        ({4: (0.30, 100, 0.95), 5: (0.40, 90, 0.95), 6: (0.50, 80, 0.5)}, None, 5),
        # Within the silhouette tie, Calinski–Harabasz decides.
        ({4: (0.39, 120, 0.95), 5: (0.40, 90, 0.95), 6: (0.30, 80, 0.95)}, None, 4),
        # No k stable: all compete.
        ({4: (0.30, 100, 0.5), 5: (0.45, 90, 0.5)}, None, 5),
        # The previous k stays unless clearly beaten...
        ({4: (0.30, 100, 0.95), 5: (0.34, 90, 0.95)}, 4, 4),
        # ...and goes when it is.
        ({4: (0.30, 100, 0.95), 5: (0.40, 90, 0.95)}, 4, 5),
        # A previous k outside the range does not count.
        ({4: (0.30, 100, 0.95), 5: (0.34, 90, 0.95)}, 9, 5),
    ],
)
def test_choose_k__scores__rule_of_the_method(table, previous_k, chosen) -> None:
    assert choose_k(_scores(table), previous_k) == chosen
