import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rollout.guardrails.simulation import SCENARIOS, simulate


class Command(BaseCommand):
    help = (
        "Simulate rollouts of one segment with synthetic telemetry through the real decision "
        "rule, in accelerated time: the rollback rate (false rollbacks for 'aa') with its 95 % "
        "interval, the median hours to rollback and the median blast radius."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
        parser.add_argument("--runs", type=int, default=200)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--devices-per-hour", type=float, default=1000.0)
        parser.add_argument("--json", action="store_true", help="end with one line of JSON")

    def handle(self, *args: Any, **opts: Any) -> None:
        runs, devices = opts["runs"], opts["devices_per_hour"]
        if not 1 <= runs <= 100_000:
            raise CommandError("--runs: must be within 1..100000")
        if not 1 <= devices <= 1_000_000:
            raise CommandError("--devices-per-hour: must be within 1..1000000")
        started = time.perf_counter()
        result = simulate(opts["scenario"], runs=runs, seed=opts["seed"], devices_per_hour=devices)
        elapsed = time.perf_counter() - started
        low, high = result["rollback_rate_ci"]
        self.stdout.write(
            f"{result['scenario']}: {runs} runs at {devices:g} devices/hour in {elapsed:.1f} s\n"
            f"  rollback rate   {result['rollback_rate']:.2%} (95 % CI {low:.2%}–{high:.2%})\n"
            f"  median to rollback  {_hours(result['median_hours_to_rollback'])}\n"
            f"  median blast radius {_count(result['median_blast_radius'])} treatment clients\n"
            f"  completed without rollback: {result['completed']}; fired by: "
            f"{result['fired_by'] or 'nothing'}"
        )
        if opts["json"]:
            self.stdout.write(json.dumps(result, sort_keys=True))


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} h"


def _count(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"
