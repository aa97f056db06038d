"""µs per flag decision in-process: 20 realistic flags, a new targeting key per call.

Run: .venv/bin/python bench/engine_bench.py [--decisions 200000]
Budget (DESIGN.md §6): ≤ 5 µs per flag decision.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rollout.engine.document import snapshot_from_document
from rollout.engine.evaluate import evaluate_all


def realistic_document(flag_count: int = 20) -> dict[str, Any]:
    """Flags with constraints, percentage rollouts and weighted variants, as in production."""
    flags = []
    for i in range(flag_count):
        rules: list[dict[str, Any]] = [
            {
                "strategy": "flexibleRollout",
                "parameters": {"rollout": str(5 + 5 * (i % 10)), "stickiness": "default"},
                "constraints": [
                    {"contextName": "plan", "operator": "IN", "values": ["pro", "team"]},
                    {"contextName": "appVersion", "operator": "SEMVER_GTE", "value": "2.0.0"},
                ],
            }
        ]
        if i % 3 == 0:
            rules.insert(
                0,
                {
                    "strategy": "default",
                    "constraints": [
                        {"contextName": "region", "operator": "IN", "values": ["apac"]},
                        {"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"},
                    ],
                },
            )
        flag: dict[str, Any] = {"key": f"flag-{i}", "kind": "boolean", "enabled": True}
        if i % 4 == 0:
            flag["kind"] = "string"
            flag["variants"] = [
                {"name": "a", "weight": 500, "value": "A"},
                {"name": "b", "weight": 500, "value": "B"},
            ]
        flag["rules"] = rules
        flags.append(flag)
    return {"version": 1, "flags": flags}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=200_000)
    args = parser.parse_args()
    snapshot = snapshot_from_document(realistic_document())
    flags = len(snapshot.flags)
    requests = max(1, args.decisions // flags)
    contexts = [
        {"targetingKey": f"user-{i}", "plan": "pro", "region": "eu", "appVersion": "2.3.0"}
        for i in range(requests)
    ]
    for context in contexts[:1000]:  # warm-up
        evaluate_all(snapshot, context)
    started = time.perf_counter()
    for context in contexts:
        evaluate_all(snapshot, context)
    elapsed = time.perf_counter() - started
    per_decision_us = elapsed / (requests * flags) * 1e6
    print(f"{requests * flags} decisions over {flags} flags, new targeting key per request")
    print(f"{per_decision_us:.2f} µs per flag decision (budget ≤ 5 µs)")
    print(f"{elapsed / requests * 1e6:.1f} µs per client (all {flags} flags)")


if __name__ == "__main__":
    main()
