import time
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from capability_probe.models import ATTRIBUTE_NAMES, ClientProfile
from capability_probe.services import client_hash, profiles_bulk_load
from segments.ml.population import generate_population

COLUMN_OF = {name: column for column, name in ATTRIBUTE_NAMES.items()}
CHUNK = 100_000


class Command(BaseCommand):
    help = (
        "Write a realistic synthetic population of capability profiles (capability.md): "
        "latent device tiers, browser quantisation, missing fields by browser. Reproducible."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--clients", type=int, required=True)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, clients: int, seed: int, **options: Any) -> None:
        if not 1 <= clients <= 20_000_000:
            raise CommandError("--clients: must be between 1 and 20,000,000")
        started = time.perf_counter()
        population = generate_population(clients, seed)
        generated = time.perf_counter() - started
        columns = {
            COLUMN_OF[name]: values
            for name, values in population.columns.items()
            if name in COLUMN_OF
        }
        written = 0
        with transaction.atomic():
            for start in range(0, clients, CHUNK):
                end = min(clients, start + CHUNK)
                hashes = [client_hash(f"synthetic:{seed}:{i}") for i in range(start, end)]
                chunk = {
                    column: _plain(values[start:end], _kind(column))
                    for column, values in columns.items()
                }
                written += profiles_bulk_load(client_hashes=hashes, columns=chunk)
        self.stdout.write(
            f"Wrote {written} synthetic profiles (seed {seed}) in "
            f"{time.perf_counter() - started:.1f} s (generation {generated:.1f} s)."
        )


def _kind(column: str) -> str:
    return str(ClientProfile._meta.get_field(column).get_internal_type())


def _plain(values: np.ndarray, kind: str) -> list[Any]:
    """numpy values as database values of the column's type; NaN and None become NULL."""
    if values.dtype == object:
        return [v if v is not None else None for v in values]
    cast: Any = {"BooleanField": bool, "PositiveSmallIntegerField": int}.get(kind, float)
    if kind == "PositiveIntegerField":
        cast = int
    return [None if np.isnan(v) else cast(v) for v in values]
