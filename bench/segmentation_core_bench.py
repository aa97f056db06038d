"""The segmentation core without a database: generate, fit, label, refit; µs per assignment.

Run: .venv/bin/python bench/segmentation_core_bench.py [--rows 100000 1000000]
Budget (docs/budgets.md): the whole job on 1,000,000 profiles ≤ 120 s and ≤ 2 GB on 2 cores
(this measures its ML part); per-request assignment ≈ 5 µs.
Each size runs in a fresh process, so its peak resident set is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from capability_probe.vocabulary import POPULATION, SAVE_DATA, Kind  # noqa: E402
from rollout.engine.capability import CapabilityModel, assign_segment  # noqa: E402
from segments.ml.population import generate_population  # noqa: E402
from segments.ml.segmentation import assign_batch, fit_segmentation  # noqa: E402

BOOLEANS = {f.wire for f in POPULATION if f.kind is Kind.BOOL}


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _contexts(columns: dict[str, np.ndarray], rows: int) -> list[dict[str, Any]]:
    """Evaluation contexts as the API builds them: present fields only, plain Python types."""
    out = []
    for i in range(rows):
        context: dict[str, Any] = {"targetingKey": f"client-{i}", "plan": "pro"}
        for name, values in columns.items():
            value = values[i]
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            if name in BOOLEANS:
                context[name] = bool(value)
            else:
                context[name] = value.item() if isinstance(value, np.generic) else value
        context.pop(SAVE_DATA.wire, None)  # the hard rule would skip the model
        out.append(context)
    return out


def _assign_us(artifact_json: dict[str, Any], columns: dict[str, np.ndarray]) -> float:
    """Best of five passes over 20,000 distinct clients, in µs per assignment."""
    model = CapabilityModel(json.loads(json.dumps(artifact_json)))
    clients = _contexts(columns, 20_000)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for client in clients:
            assign_segment(model, client)
        best = min(best, (time.perf_counter() - started) / len(clients))
    return best * 1e6


def measure(rows: int) -> dict[str, Any]:
    """Every phase at one size, in this process."""
    figures: dict[str, Any] = {"rows": rows}
    started = time.perf_counter()
    population = generate_population(rows, seed=1)
    figures["generate_s"] = round(time.perf_counter() - started, 2)
    figures["peak_mb_after_generate"] = _peak_mb()

    started = time.perf_counter()
    result = fit_segmentation(population.columns, previous=None, seed=0)
    figures["fit_s"] = round(time.perf_counter() - started, 2)
    figures["fit_phases_s"] = result.timings
    figures["k"] = result.k
    figures["keys"] = result.artifact.keys
    figures["peak_mb_after_fit"] = _peak_mb()

    started = time.perf_counter()
    assign_batch(result.artifact, population.columns)
    figures["label_s"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    refit = fit_segmentation(population.columns, previous=result.artifact, seed=1)
    figures["refit_warm_s"] = round(time.perf_counter() - started, 2)
    figures["refit_same_identity"] = round(
        float(np.mean(refit.assignments == result.assignments)), 4
    )
    figures["peak_mb"] = _peak_mb()
    figures["assign_segment_us"] = round(
        _assign_us(result.artifact.to_json(), population.columns), 2
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child run: one size
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    for rows in args.rows:
        child = subprocess.run(
            [sys.executable, __file__, "--one", str(rows)],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
