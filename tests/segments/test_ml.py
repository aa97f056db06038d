"""The segmentation core on synthetic populations (no database)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans

from rollout.engine.capability import CapabilityModel, assign_segment
from segments.ml.drift import adjusted_rand, share_psi
from segments.ml.features import transform
from segments.ml.histograms import feature_histograms, psi_against
from segments.ml.population import generate_population
from segments.ml.segmentation import assign_batch, embed, fit_segmentation, planted_agreement

# Planted structure: each tier homogeneous in its flags, moderate noise, no browser quirks.
PLANTED = {
    "browser_quirks": False,
    "weak_cellular": 0.0,
    "spread": 0.6,
    "slow_tail": 0.0,
    "pure_tiers": True,
}


@pytest.fixture(scope="module")
def realistic():
    population = generate_population(40_000, seed=11)
    return population, fit_segmentation(population.columns, previous=None, seed=0)


def test_fit__planted_tiers__recovered_ari_at_least_0_9() -> None:
    population = generate_population(50_000, seed=5, **PLANTED)

    result = fit_segmentation(population.columns, previous=None, seed=0)

    assert 4 <= result.k <= 8
    assert planted_agreement(result.assignments, population.tiers) >= 0.9


def test_fit__rerun_on_same_population__identities_stay(realistic) -> None:
    population, first = realistic

    second = fit_segmentation(
        population.columns, previous=first.artifact, seed=3, next_identity=100
    )

    assert second.new_identities == []
    assert np.mean(first.assignments == second.assignments) >= 0.99
    assert second.artifact.keys == first.artifact.keys


def test_fit__new_tier_planted__new_identity_flagged() -> None:
    base = generate_population(30_000, seed=2, **PLANTED)
    first = fit_segmentation(base.columns, previous=None, seed=0)
    weights = {
        "low-phone": 0.15,
        "mid-phone": 0.25,
        "high-phone": 0.12,
        "laptop": 0.2,
        "desktop": 0.13,
        "feature-phone": 0.15,
    }
    shifted = generate_population(30_000, seed=3, tier_weights=weights, **PLANTED)

    second = fit_segmentation(shifted.columns, previous=first.artifact, seed=0, next_identity=50)

    assert second.new_identities
    assert all(i >= 50 for i in second.new_identities)
    new_rows = np.isin(second.assignments, second.new_identities)
    assert (shifted.tiers[new_rows] == "feature-phone").mean() > 0.8


def test_drift__redraw_vs_shift__psi_low_then_high(realistic) -> None:
    population, first = realistic
    reference = feature_histograms(population.columns, first.artifact.spec)
    redraw = generate_population(40_000, seed=12)
    shifted = generate_population(40_000, seed=13, network_shift=3.0, device_shift=2.5)

    calm = psi_against(reference, redraw.columns, first.artifact.spec)
    moved = psi_against(reference, shifted.columns, first.artifact.spec)

    def shares(columns):
        ids = assign_batch(first.artifact, columns)
        return {str(i): float(np.mean(ids == i)) for i in first.artifact.identities}

    assert max(calm.values()) < 0.02
    assert max(moved.values()) > 0.25
    assert share_psi(shares(population.columns), shares(redraw.columns)) < 0.01
    assert share_psi(shares(population.columns), shares(shifted.columns)) > 0.1


def test_adjusted_rand__same_model__one(realistic) -> None:
    population, first = realistic

    assert adjusted_rand(first.artifact, first.artifact, population.columns) == 1.0


def test_assigner__pure_python__agrees_with_numpy_and_sklearn_on_10k(realistic) -> None:
    population, first = realistic
    artifact = first.artifact
    sample = {name: values[:10_000] for name, values in population.columns.items()}
    model = CapabilityModel(artifact.to_json())
    key_of = dict(zip(artifact.identities, artifact.keys, strict=True))
    kmeans = KMeans(
        n_clusters=len(artifact.centroids),
        init=np.asarray(artifact.centroids),
        n_init=1,
        max_iter=1,
    ).fit(np.asarray(artifact.centroids))
    kmeans.cluster_centers_ = np.asarray(artifact.centroids)

    by_sklearn = kmeans.predict(embed(artifact, transform(sample, artifact.spec)))
    by_numpy = assign_batch(artifact, sample)
    by_engine = []
    for i in range(10_000):
        attributes = {}
        for name, values in sample.items():
            value = values[i]
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            if name in {"webgpu", "shaderF16", "webnn", "wasmSimd", "mobile", "saveData"}:
                value = bool(value)
            attributes[name] = value.item() if hasattr(value, "item") else value
        attributes.pop("saveData", None)
        by_engine.append(assign_segment(model, attributes))

    assert [key_of[int(i)] for i in by_numpy] == by_engine
    assert [artifact.keys[i] for i in by_sklearn] == by_engine


def test_assign_segment__hard_rules_and_missing() -> None:
    population = generate_population(5_000, seed=1)
    artifact = fit_segmentation(population.columns, previous=None, seed=0).artifact
    model = CapabilityModel(artifact.to_json())

    assert assign_segment(model, {"saveData": True, "memoryGb": 8}) == "save-data"
    assert assign_segment(model, {"targetingKey": "u"}) is None
    assert assign_segment(model, {"cores": 8}) in artifact.keys


def test_population__browser_quirks__as_browsers_report() -> None:
    population = generate_population(200_000, seed=4)
    columns = population.columns
    memory = columns["memoryGb"]
    safari = columns["browser"] == "Safari"
    effective = [e for e in columns["effectiveType"] if e is not None]

    assert set(np.unique(memory[~np.isnan(memory)])) <= {1.0, 2.0, 4.0, 8.0, 16.0, 32.0}
    assert np.isnan(memory[safari]).all()
    assert (columns["cores"][columns["os"] == "iOS"] == 4).all()
    assert 0.15 <= np.mean([e != "4g" for e in effective]) <= 0.25
    assert np.nanmax(columns["downlinkMbps"]) == 10.0
