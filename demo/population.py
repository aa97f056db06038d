"""Writing a synthetic population of profiles (demo data, tests, benchmarks)."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db import transaction

from capability_probe.models import ATTRIBUTE_NAMES, ClientProfile
from capability_probe.services import client_hash, profiles_bulk_load
from segments.ml.population import generate_population

COLUMN_OF = {name: column for column, name in ATTRIBUTE_NAMES.items()}
CHUNK = 100_000


def _kind(column: str) -> str:
    return str(ClientProfile._meta.get_field(column).get_internal_type())


def _plain(values: np.ndarray, kind: str) -> list[Any]:
    """numpy values as database values of the column's type; NaN and None become NULL."""
    if values.dtype == object:
        return [v if v is not None else None for v in values]
    cast: Any = float
    if kind == "BooleanField":
        cast = bool
    elif kind in ("PositiveSmallIntegerField", "PositiveIntegerField"):
        cast = int
    return [None if np.isnan(v) else cast(v) for v in values]


@transaction.atomic
def population_write(*, clients: int, seed: int) -> int:
    """Generate `clients` realistic profiles (docs/capability-signals.md) and store them;
    returns the count.

    Client ids are `synthetic:<seed>:<n>`, stored hashed like any other. They belong to no
    environment: they train segmentation, and no key reads them as a client's profile.
    """
    population = generate_population(clients, seed)
    columns = {
        COLUMN_OF[name]: values for name, values in population.columns.items() if name in COLUMN_OF
    }
    written = 0
    for start in range(0, clients, CHUNK):
        end = min(clients, start + CHUNK)
        hashes = [client_hash(f"synthetic:{seed}:{i}") for i in range(start, end)]
        chunk = {
            column: _plain(values[start:end], _kind(column)) for column, values in columns.items()
        }
        written += profiles_bulk_load(environment_id=None, client_hashes=hashes, columns=chunk)
    return written
