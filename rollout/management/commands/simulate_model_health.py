import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rollout.guardrails.drift_simulation import SCENARIOS, STEP_HOURS, simulate


class Command(BaseCommand):
    help = (
        "Simulate one on-device model version in one segment with synthetic telemetry through "
        "the real drift rule, in accelerated time: how often a retraining request is filed "
        "(false triggers for 'aa') with its 95 % interval, and how soon after the onset."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--scenario", required=True, choices=SCENARIOS)
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
        low, high = result["trigger_rate_ci"]
        lines = [
            f"{result['scenario']}: {runs} runs at {devices:g} devices/hour in {elapsed:.1f} s "
            f"(the drift task every {STEP_HOURS:g} h)",
            f"  trigger rate  {result['trigger_rate']:.2%} (95 % CI {low:.2%}–{high:.2%})",
            f"  median hours to trigger  {_hours(result['median_hours_to_trigger'])} "
            f"(max {_hours(result['max_hours_to_trigger'])})",
            f"  fired by: {result['fired_by'] or 'nothing'}",
        ]
        if "median_hours_to_stale_rule" in result:
            lines.append(
                f"  freshness limit's rule: median {_hours(result['median_hours_to_stale_rule'])}"
                f" after the crossing, max {_hours(result['max_hours_to_stale_rule'])}, "
                f"{result['stale_rule_within_one_interval']:.0%} within one interval"
            )
        self.stdout.write("\n".join(lines))
        if opts["json"]:
            self.stdout.write(json.dumps(result, sort_keys=True))


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f} h"
