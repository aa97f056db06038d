"""µs per flag decision in-process: 20 realistic flags, a new targeting key per call.

Run: .venv/bin/python bench/engine_bench.py [--decisions 200000]
Budget (docs/budgets.md): ≤ 5 µs per flag decision.

Two figures: `evaluate` for one flag with a new context (and targeting key) on every call,
and `evaluate_all` for every flag of one client, as the evaluate endpoint does. Then the same
`evaluate_all` with capability on: a segmentation model (and its estimator) fitted on 20,000
clients of the realistic population, a smart-compose ladder among the flags, and clients of
that population as their browsers report them — Chromium ones with everything, Safari and
Firefox ones with memory estimated on every call (the inference the hot path pays for them).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rollout.engine import (
    ConstraintDef,
    FlagDef,
    RuleDef,
    SegmentDef,
    Snapshot,
    VariantDef,
    build_snapshot,
    evaluate,
    evaluate_all,
    rollout_rule,
)
from rollout.engine.capability import CapabilityModel
from rollout.engine.shapes import flag_from_json
from segments.ml.population import generate_population
from segments.ml.segmentation import fit_segmentation

PLANS = ("free", "pro", "team")
REGIONS = ("eu", "us", "apac")
VERSIONS = ("1.9.4", "2.0.0", "2.3.1", "3.0.0-beta.2")
BETA = SegmentDef(1, "beta", (ConstraintDef("email", "STR_ENDS_WITH", ("@example.com",)),))


def realistic_flags(count: int = 20) -> list[FlagDef]:
    """1-3 rules each: constraints, a segment, percentage rollouts, weighted variants."""
    flags = []
    for i in range(count):
        key = f"flag-{i}"
        paying = ConstraintDef("plan", "IN", ("pro", "team"))
        recent = ConstraintDef("appVersion", "SEMVER_GTE", value="2.0.0")
        rules = [rollout_rule(key, 5 + 5 * (i % 10), constraints=(paying, recent))]
        if i % 3 == 0:
            targeted = (
                ConstraintDef("region", "IN", ("apac",)),
                ConstraintDef("memoryGb", "NUM_GTE", value="4"),
            )
            rules.insert(0, RuleDef(constraints=targeted))
        if i % 5 == 0:
            rules.append(RuleDef(segments=(BETA.id,)))
        variants: tuple[VariantDef, ...] = ()
        kind = "boolean"
        if i % 4 == 0:
            kind = "string"
            variants = (
                VariantDef("a", 500, "Welcome!", "string"),
                VariantDef("b", 300, "Hi there!", "string"),
                VariantDef("c", 200, "Hello!", "string"),
            )
        flags.append(
            FlagDef(key, kind, True, "" if kind == "string" else False, tuple(rules), variants)
        )
    return flags


def contexts(count: int) -> list[dict[str, Any]]:
    """Distinct clients: a new targeting key each, attributes varying across rules."""
    return [
        {
            "targetingKey": f"user-{i}",
            "plan": PLANS[i % 3],
            "region": REGIONS[i % 3 - 1],
            "appVersion": VERSIONS[i % 4],
            "memoryGb": 2 + i % 8,
            "email": f"user-{i}@example.com" if i % 7 == 0 else f"user-{i}@mail.test",
        }
        for i in range(count)
    ]


def per_call(snapshot: Snapshot, decisions: int) -> float:
    """µs per `evaluate` call, each with a new client."""
    keys = list(snapshot.flags)
    clients = contexts(decisions)
    calls = [(keys[i % len(keys)], client) for i, client in enumerate(clients)]
    for key, client in calls[:2000]:  # warm-up
        evaluate(snapshot, key, client)
    started = time.perf_counter()
    for key, client in calls:
        evaluate(snapshot, key, client)
    return (time.perf_counter() - started) / len(calls) * 1e6


def per_client(snapshot: Snapshot, decisions: int) -> float:
    """µs per `evaluate_all` call (every flag of one new client)."""
    return per_client_of(snapshot, contexts(max(1, decisions // len(snapshot.flags))))


SMART_COMPOSE = {
    "rungs": [
        {
            "key": "edge",
            "requirements": [
                {"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"},
                {"contextName": "benchmarkMs", "operator": "NUM_LTE", "value": "60"},
                {"contextName": "webgpu", "operator": "IN", "values": ["true"]},
            ],
        },
        {
            "key": "cloud",
            "requirements": [{"contextName": "rttMs", "operator": "NUM_LTE", "value": "300"}],
        },
        {"key": "lite"},
        {"key": "off"},
    ],
    "baseline": "lite",
    "safe": "lite",
}


def population_contexts(count: int, seed: int) -> list[dict[str, Any]]:
    """Clients of the realistic population as context attributes (missing left out)."""

    columns = generate_population(count, seed).columns
    flags = {"webgpu", "shaderF16", "webnn", "wasmSimd", "saveData", "mobile"}
    out = []
    for row in range(count):
        context: dict[str, Any] = {"targetingKey": f"device-{row}", "plan": PLANS[row % 3]}
        for name, values in columns.items():
            value = values[row]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            context[name] = (
                bool(value > 0.5)
                if name in flags
                else (value if isinstance(value, str) else float(value))
            )
        out.append(context)
    return out


def capability_snapshot() -> Snapshot:
    """The realistic flags, a smart-compose ladder and a fitted segmentation model."""

    population = generate_population(20_000, seed=1)
    model = fit_segmentation(population.columns, previous=None, seed=0, score_sample=2_000)
    ladder = flag_from_json(
        {"key": "smart-compose", "kind": "string", "enabled": True, "ladder": SMART_COMPOSE}
    )
    return build_snapshot(
        1,
        "bench",
        [*realistic_flags(), ladder],
        [BETA],
        capability=CapabilityModel(json.loads(json.dumps(model.artifact.to_json()))),
    )


def per_client_of(snapshot: Snapshot, clients: list[dict[str, Any]]) -> float:
    """µs per `evaluate_all` call over `clients`."""
    for client in clients[:200]:  # warm-up
        evaluate_all(snapshot, client)
    started = time.perf_counter()
    for client in clients:
        evaluate_all(snapshot, client)
    return (time.perf_counter() - started) / len(clients) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=200_000)
    args = parser.parse_args()
    snapshot = build_snapshot(1, "bench", realistic_flags(), [BETA])
    broken = {key: flag.problems for key, flag in snapshot.flags.items() if flag.problems}
    assert not broken, broken  # an invalid flag is always off: it would measure nothing
    flags = len(snapshot.flags)
    single = per_call(snapshot, args.decisions)
    client = per_client(snapshot, args.decisions)
    print(f"{args.decisions} decisions over {flags} flags, a new targeting key per call")
    print(f"evaluate:     {single:.2f} µs per flag decision (budget ≤ 5 µs)")
    print(f"evaluate_all: {client / flags:.2f} µs per flag decision, {client:.1f} µs per client")
    with_capability = capability_snapshot()
    flags = len(with_capability.flags)
    population = population_contexts(max(1000, args.decisions // flags), seed=2)
    hidden = [c for c in population if "memoryGb" not in c]
    reported = [c for c in population if "memoryGb" in c]
    for name, clients in (("all", population), ("reported", reported), ("hidden", hidden)):
        figure = per_client_of(with_capability, clients)
        print(
            f"evaluate_all with capability ({name}: {len(clients)} clients,"
            f" {flags} flags with a ladder, segment and estimates):"
            f" {figure / flags:.2f} µs per flag decision, {figure:.1f} µs per client"
        )


if __name__ == "__main__":
    main()
