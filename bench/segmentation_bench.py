"""Segmentation end to end on PostgreSQL: write N synthetic profiles, then read, fit, label,
write and publish with the real job; report seconds per phase and peak memory.

Run: .venv/bin/python bench/segmentation_bench.py --clients 100000 1000000
Budget (docs/budgets.md): 1,000,000 profiles (read, fit, label, write) ≤ 120 s and ≤ 2 GB
on 2 cores.
Each size runs in a fresh PostgreSQL database (dropped afterwards); peak memory is the
maximum resident set size of the process that runs the job.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
PG = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"

JOB = """
import json, resource, time
import django
django.setup()
from segments.services import segmentation_run
started = time.perf_counter()
run = segmentation_run(trigger="bench", seed=0)
print(json.dumps({
    "seconds": round(time.perf_counter() - started, 1),
    "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    "rows": run.rows, "k": run.k, "silhouette": run.silhouette, "timings": run.timings,
}))
"""


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    return done.stdout


def measure(clients: int) -> dict[str, object]:
    """Generate `clients` profiles in a fresh database and time one segmentation run."""
    name = f"edgeflags_segbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}",
        "SECRET_KEY": "bench-only",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "EDGEFLAGS_LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    try:
        _manage(env, "migrate", "--no-input")
        generated = _manage(env, "generate_population", "--clients", str(clients), "--seed", "1")
        job = subprocess.run(
            [sys.executable, "-c", JOB], cwd=REPO, env=env, capture_output=True, text=True
        )
        if job.returncode:
            raise SystemExit(job.stderr)
        result: dict[str, object] = json.loads(job.stdout.strip().splitlines()[-1])
        result["generate"] = generated.strip()
        return result
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    for clients in args.clients:
        result = measure(clients)
        print(
            f"{clients:>9} profiles: {result['seconds']} s, peak {result['peak_mb']} MB, "
            f"k={result['k']}, silhouette {result['silhouette']:.3f}"
        )
        print(f"           phases: {result['timings']}")
        print(f"           {result['generate']}")


if __name__ == "__main__":
    main()
