import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from demo.population import population_write


class Command(BaseCommand):
    help = (
        "Write a realistic synthetic population of capability profiles "
        "(docs/capability-signals.md): latent device tiers, browser quantisation, missing "
        "fields by browser. Reproducible."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--clients", type=int, required=True)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, clients: int, seed: int, **options: Any) -> None:
        if not 1 <= clients <= 20_000_000:
            raise CommandError("--clients: must be between 1 and 20,000,000")
        started = time.perf_counter()
        written = population_write(clients=clients, seed=seed)
        self.stdout.write(
            f"Wrote {written} synthetic profiles (seed {seed}) in "
            f"{time.perf_counter() - started:.1f} s."
        )
