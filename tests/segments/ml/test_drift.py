"""Drift between runs: share PSI, per-feature decile PSI and the adjusted Rand index."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segments.ml.drift import adjusted_rand, feature_psi, share_psi
from segments.ml.histograms import feature_histograms, psi_against
from segments.ml.population import generate_population
from segments.ml.segmentation import ModelArtifact, assign_batch
from tests.support.populations import fit


def _shares(artifact: ModelArtifact, columns: dict[str, np.ndarray]) -> dict[int, float]:
    identities = assign_batch(artifact, columns)
    return {i: float(np.mean(identities == i)) for i in artifact.identities}


def test_drift__redraw_then_shift__near_zero_then_clear_rise(realistic) -> None:
    base, artifact = realistic.population, realistic.result.artifact
    redraw = generate_population(60_000, seed=12)
    shifted = generate_population(60_000, seed=13, network_shift=3.0, device_shift=2.5)

    calm = feature_psi(base.columns, redraw.columns, artifact.spec)
    moved = feature_psi(base.columns, shifted.columns, artifact.spec)
    calm_shares = share_psi(_shares(artifact, base.columns), _shares(artifact, redraw.columns))
    moved_shares = share_psi(_shares(artifact, base.columns), _shares(artifact, shifted.columns))

    assert set(calm) == {f["name"] for f in artifact.spec}
    assert max(calm.values()) < 0.01
    assert calm_shares < 0.005
    assert max(moved.values()) > 0.25
    assert moved["benchmark_log"] > 0.25
    assert moved["rtt_log1p"] > 0.1
    assert moved["memory_log2"] < 0.01  # what did not move does not alarm
    assert moved_shares > 0.02  # past the alert band for ~6 segments (docs/capability-signals.md)


def test_share_psi__hand_computed__matches() -> None:
    old = {"edge-ready": 0.5, "cloud-only": 0.5}
    new = {"edge-ready": 0.6, "cloud-only": 0.4}

    expected = 0.1 * math.log(0.6 / 0.5) + (-0.1) * math.log(0.4 / 0.5)
    assert share_psi(old, new) == pytest.approx(expected)
    assert share_psi(old, old) == 0.0


def test_share_psi__segment_on_one_side_only__epsilon_not_infinity() -> None:
    psi = share_psi({1: 0.5, 2: 0.5}, {1: 0.45, 2: 0.45, 3: 0.1})

    assert math.isfinite(psi)
    assert psi > 0.5


def test_feature_psi__rare_flag_shifts__detected() -> None:
    # A flag at 5 % has every decile at 0: the bins must still tell 0 from 1.
    spec = [{"name": "webnn", "source": "webnn", "transform": "bool", "impute": 0.0}]
    rng = np.random.default_rng(0)
    old = {"webnn": (rng.random(20_000) < 0.05).astype(float)}
    new = {"webnn": (rng.random(20_000) < 0.25).astype(float)}

    assert feature_psi(old, new, spec)["webnn"] > 0.25
    assert feature_psi(old, old, spec)["webnn"] == 0.0


def test_psi_against__stored_reference__same_as_from_columns(realistic) -> None:
    base, spec = realistic.population, realistic.result.artifact.spec
    shifted = generate_population(20_000, seed=14, device_shift=2.0)

    reference = feature_histograms(base.columns, spec)

    assert psi_against(reference, shifted.columns, spec) == feature_psi(
        base.columns, shifted.columns, spec
    )
    assert all(len(h["shares"]) == len(h["edges"]) + 1 for h in reference.values())


def test_adjusted_rand__same_model_then_refit__one_then_high(realistic) -> None:
    artifact = realistic.result.artifact
    sample = {name: values[:10_000] for name, values in realistic.population.columns.items()}
    refit = fit(realistic.population, previous=artifact, seed=5).artifact

    assert adjusted_rand(artifact, artifact, sample) == 1.0
    assert adjusted_rand(artifact, refit, sample) > 0.95
