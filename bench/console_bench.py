"""Server time of the rollout console's pages with 50 flags × 8 segments.

Run: .venv/bin/python bench/console_bench.py [--requests 20]
Budget (issue 7): no page over 300 ms of server time with 50 flags × 8 segments.

In a fresh PostgreSQL database (dropped afterwards): `load_demo`, then 45 more edge features
with ladders and rollout plans over the demo's segments plus three extra capability segments
(8 in all), 72 hours of hourly aggregates per flag, segment and arm, and their audit trail;
then each page is requested N times through Django's test client by a release manager, and
the median and worst server time are printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
PG = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"

SETUP = """
import random
from datetime import timedelta
import django
django.setup()
from django.utils import timezone
from rollout.audit import Actor
from demo.data import SMART_COMPOSE_LADDER
from rollout.models import Environment, FlagState, MetricBucket
from rollout.rollouts import rollout_plan_create, segment_transition
from rollout.services import flag_create, flag_ladder_set, flag_state_update
from segments.models import CapabilitySegment

for identity in range(100, 103):
    CapabilitySegment.objects.get_or_create(
        identity=identity, defaults={"key": f"extra-{identity}", "label": f"extra {identity}"}
    )
production = Environment.objects.get(key="production")
actor = Actor("bench")
rng = random.Random(1)
now = timezone.now().replace(minute=0, second=0, microsecond=0)
for number in range(45):
    key = f"bench-feature-{number:02d}"
    flag = flag_create(key=key, kind="string", off_value="off", tags=["bench", "edge"])
    flag_ladder_set(flag=flag, rungs=SMART_COMPOSE_LADDER, baseline="lite")
    state = flag_state_update(state=FlagState.objects.get(flag=flag, environment=production),
                              enabled=True)
    plan = rollout_plan_create(state=state, actor=actor, now=now - timedelta(hours=72))
    rows = list(plan.segments.all())
    for row in rows[: rng.randint(0, len(rows))]:
        segment_transition(row=row, action="advance", actor=actor, reason="bench",
                           now=now - timedelta(hours=48))
    buckets = []
    for row in rows:
        for hour in range(72):
            for arm in ("treatment", "control"):
                n = rng.randint(5, 60)
                buckets.append(MetricBucket(
                    environment=production, flag=key, arm=arm,
                    segment_identity=row.segment_identity,
                    minute=now - timedelta(hours=72 - hour, minutes=-30), exposures=n, clients=n,
                    failures=rng.randint(0, 2), latency_n=n, latency_sum=0.05 * n,
                    latency_sumsq=0.01 * n, energy_n=n, energy_sum=40.0 * n,
                    energy_sumsq=1700.0 * n, rating_n=n // 3, rating_sum=4.1 * (n // 3),
                    rating_sumsq=17.8 * (n // 3)))
    MetricBucket.objects.bulk_create(buckets)
print("flags with plans:", FlagState.objects.filter(rollout_plan__isnull=False).count())
"""

MEASURE = """
import statistics, time
import django
django.setup()
from django.contrib.auth.models import Group, User
from django.test import Client
from rollout.roles import RELEASE_MANAGER
from rollout.models import Flag
from rollout.rollouts import known_segments

user = User.objects.create_user("bench-rm", password="x", is_staff=True)
user.groups.add(Group.objects.get(name=RELEASE_MANAGER))
client = Client()
client.force_login(user)
print(f"{Flag.objects.count()} flags x {len(known_segments())} segments")
pages = {
    "overview": "/admin/console/?environment=production",
    "overview (refresh)": "/admin/console/?environment=production&partial=1",
    "flag (bench-feature-07)": "/admin/console/flags/bench-feature-07?environment=production",
    "flag (lead-summary)": "/admin/console/flags/lead-summary?environment=production",
    "segments": "/admin/console/segments/",
    "audit log": "/admin/console/audit/",
    "audit CSV": "/admin/console/audit.csv",
}
for name, url in pages.items():
    times = []
    for _ in range(REQUESTS + 2):
        started = time.perf_counter()
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    times = sorted(times[2:])  # the first two warm caches
    print(f"{name:26s} median {statistics.median(times):6.1f} ms   worst {times[-1]:6.1f} ms")
"""


def _run(env: dict[str, str], code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    return done.stdout


def _manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(done.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    name = f"edgeflags_consolebench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}",
        "SECRET_KEY": "bench-only",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ALLOWED_HOSTS": "testserver",
        "EDGEFLAGS_LOG_LEVEL": "WARNING",
        "EDGEFLAGS_DEMO_CLIENTS": "5000",
        "EDGEFLAGS_EXPOSURE_FLUSH_S": "0",
        "PYTHONPATH": str(REPO),
    }
    try:
        _manage(env, "migrate", "--no-input")
        _manage(env, "load_demo")
        print(_run(env, SETUP).strip())
        print(_run(env, f"REQUESTS = {args.requests}\n" + MEASURE).strip())
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
