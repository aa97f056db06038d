"""Shared populations and their fits for the segmentation core's tests (no database)."""

from __future__ import annotations

import pytest

from segments.ml.population import generate_population
from tests.support.populations import PLANTED, Fitted, fit


@pytest.fixture(scope="session")
def realistic() -> Fitted:
    """60k clients as docs/capability-signals.md describes them, and their first model."""
    population = generate_population(60_000, seed=11)
    return Fitted(population, fit(population))


@pytest.fixture(scope="session")
def planted() -> Fitted:
    """60k clients with the planted tier structure, and their first model."""
    population = generate_population(60_000, seed=5, **PLANTED)
    return Fitted(population, fit(population))
