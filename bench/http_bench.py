"""Requests/s and latency of POST /api/v1/evaluate over HTTP, served as in production.

Run: .venv/bin/python bench/http_bench.py [--duration 15] [--connections 32] [--workers 2]
     [--threads 2] [--warmup 3] [--granian-args '--blocking-threads 1'] [--json]
Needs wrk (apt-get install -y wrk), PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and
Redis on 127.0.0.1:6379. Exits 1 when any measured answer was not 2xx, 2 when a step failed.

What it does, all in one run:
1. creates a fresh PostgreSQL database (dropped at the end) and runs `manage.py migrate`;
   Redis DB 13 with a key prefix of its own (its keys are deleted at the end);
2. loads 20 flags with constraints, percentage rollouts and weighted variants through the
   real services (a child process running this script with --seed), in environment
   `production`, and a client API key;
3. serves the app as the Procfile does (granian, WSGI, N workers, DEBUG off), and a bare
   Django view (bench/bench_app.py) answering a fixed body of the size of a typical evaluate
   response, the same way;
4. drives both with wrk (a new targetingKey per request) after a warm-up, and prints
   requests/s, p50 and p99 of each and their ratio.

wrk runs on the same machine and takes CPU from the server: compare the two rows of one run
(the ratio) rather than absolute figures from different days.
Budget (DESIGN.md §6): >= 4,800 requests/s with p99 <= 25 ms on the 2-core box.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgres://postgres@127.0.0.1:5432/{name}"
REDIS_URL = "redis://127.0.0.1:6379/13"

BUDGET_RPS = 4800.0
BUDGET_P99_MS = 25.0
# CPU used by neither the server nor wrk above which a run is reported as disturbed.
OTHER_LOAD_WARNING_CORES = 0.25

EVALUATE_PATH = "/api/v1/evaluate"
BARE_PATH = "/bench/fixed"
FLAG_COUNT = 20
SEED_MARKER = "BENCH-SEED "
SAMPLE_CONTEXT = {"plan": "pro", "region": "eu", "appVersion": "2.3.0"}

# Variables the children must not inherit: the service choice, Django and granian knobs.
INHERITED_PREFIXES = ("EDGEFLAGS_", "GRANIAN_")
INHERITED_NAMES = ("DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")


# --- seeding (runs in a child with Django set up) ---------------------------------------------

FLAG_NAMES = (
    "smart-compose",
    "predictive-typing",
    "lead-scoring",
    "summary-card",
    "on-device-ranker",
    "reply-suggestions",
    "image-captions",
    "voice-notes",
    "semantic-search",
    "spam-shield",
    "tone-check",
    "auto-tagging",
    "meeting-notes",
    "translate-inline",
    "code-assist",
    "smart-filters",
    "digest-email",
    "churn-nudge",
    "pricing-copy",
    "onboarding-tour",
)
KINDS = ("boolean", "string", "number", "object")
OFF_VALUES: dict[str, Any] = {
    "boolean": False,
    "string": "control",
    "number": 0,
    "object": {"model": "none", "rung": "off"},
}


def _variants(kind: str, index: int) -> list[dict[str, Any]]:
    """Weighted variants for non-boolean flags (weights add up to 1000, as in Unleash)."""
    if kind == "string":
        return [
            {"name": "control", "weight": 500, "value": "control"},
            {"name": "treatment", "weight": 500, "value": f"copy-v{index}"},
        ]
    if kind == "number":
        return [
            {"name": "low", "weight": 334, "value": 0.25},
            {"name": "mid", "weight": 333, "value": 0.5},
            {"name": "high", "weight": 333, "value": 0.75},
        ]
    if kind == "object":
        return [
            {"name": "device", "weight": 700, "value": {"model": "tiny-v2", "rung": "device"}},
            {"name": "cloud", "weight": 300, "value": {"model": "large-v1", "rung": "cloud"}},
        ]
    return []


def _rules(kind: str, index: int) -> list[dict[str, Any]]:
    """1-3 rules: an APAC/memory rule (every 3rd flag), a rollout on plan and app version,
    and an EU/US rollout with its own variants (every 5th flag)."""
    rules: list[dict[str, Any]] = []
    if index % 3 == 0:
        rules.append(
            {
                "strategy": "default",
                "constraints": [
                    {"contextName": "region", "operator": "IN", "values": ["apac"]},
                    {"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"},
                ],
            }
        )
    rules.append(
        {
            "strategy": "flexibleRollout",
            "rollout_percentage": 5 + (index * 7) % 46,
            "constraints": [
                {"contextName": "plan", "operator": "IN", "values": ["pro", "team"]},
                {
                    "contextName": "appVersion",
                    "operator": "SEMVER_GTE",
                    "value": "2.5.0" if index % 4 == 3 else "2.0.0",
                },
            ],
        }
    )
    if index % 5 == 0:
        rules.append(
            {
                "strategy": "flexibleRollout",
                "rollout_percentage": 10 + (index * 3) % 41,
                "constraints": [
                    {"contextName": "region", "operator": "IN", "values": ["eu", "us"]},
                ],
                "variants": list(reversed(_variants(kind, index))),
            }
        )
    return rules


def seed() -> None:
    """Create environment `production`, 20 enabled flags and a client key; print the key."""
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import transaction

    from rollout.models import FlagState
    from rollout.services import (
        api_key_create,
        environment_create,
        flag_create,
        flag_state_update,
        rule_create,
    )

    # One transaction: the snapshot is compiled and published once, when it commits.
    with transaction.atomic():
        environment = environment_create(key="production", name="Production")
        for index, name in enumerate(FLAG_NAMES[:FLAG_COUNT]):
            kind = KINDS[index % len(KINDS)]
            flag = flag_create(key=name, kind=kind, off_value=OFF_VALUES[kind], tags=["bench"])
            state = FlagState.objects.get(flag=flag, environment=environment)
            flag_state_update(state=state, enabled=True, variants=_variants(kind, index))
            for rule in _rules(kind, index):
                rule_create(state=state, **rule)
        _, raw_key = api_key_create(environment=environment, scope="client", name="http bench")
    print(SEED_MARKER + json.dumps({"key": raw_key}), flush=True)


# --- processes ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process' environment without service or server choices, plus `overrides`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in INHERITED_NAMES and not k.startswith(INHERITED_PREFIXES)
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def run_child(argv: list[str], env: Mapping[str, str], what: str, timeout: float = 300) -> str:
    """Run a short-lived child in its own process group; its stdout, or BenchError."""
    with subprocess.Popen(
        argv,
        cwd=REPO,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{what} did not finish within {timeout:g} s") from exc
        finally:
            stop(process)
    if process.returncode != 0:
        raise BenchError(f"{what} exited {process.returncode}:\n{stderr[-4000:]}")
    return stdout


def stop(process: subprocess.Popen[Any]) -> None:
    """End `process` and whatever is left of its process group (granian's workers, say)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
    # The leader is gone or stuck; no member of its group may outlive the benchmark.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait(timeout=10)


class BenchError(RuntimeError):
    """A setup or measurement step failed; the message says which and why."""


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@contextmanager
def granian(
    name: str,
    target: str,
    workers: int,
    env: Mapping[str, str],
    log_dir: Path,
    extra_args: Sequence[str] = (),
) -> Iterator[Server]:
    """`target` served as the Procfile serves the app (plus `extra_args`) during the block."""
    port = free_port()
    argv = [
        str(BIN / "granian"),
        "--interface",
        "wsgi",
        "--no-ws",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        *extra_args,
        target,
    ]
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Server(name, process, port, log_path)
    finally:
        stop(process)


def post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
    """One POST; (status, body) also for error statuses."""
    request = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def wait_until_serving(server: Server, path: str, timeout: float = 60) -> None:
    """Wait until `server` answers GET `path` at all (any HTTP status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited early:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url(path), timeout=5):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise BenchError(f"{server.name} did not answer within {timeout:g} s:\n{server.log_tail()}")


def evaluate_body(targeting_key: str) -> bytes:
    return json.dumps({"context": {"targetingKey": targeting_key, **SAMPLE_CONTEXT}}).encode()


def typical_evaluate_size(server: Server, headers: Mapping[str, str]) -> int:
    """Median body size of evaluate answers over a few targeting keys; checks they are sane."""
    sizes = []
    for i in range(25):
        status, body = post(server.url(EVALUATE_PATH), evaluate_body(f"probe-{i}"), headers)
        if status != 200:
            raise BenchError(f"evaluate answered {status}: {body[:500]!r}")
        flags = json.loads(body).get("flags", {})
        if len(flags) != FLAG_COUNT:
            raise BenchError(f"evaluate answered {len(flags)} flags, expected {FLAG_COUNT}")
        sizes.append(len(body))
    return int(statistics.median(sizes))


# --- wrk ----------------------------------------------------------------------------------

LUA_TEMPLATE = """
-- A new targetingKey per request: user-<n>, n unique across threads and runs.
local next_thread_id = 0
function setup(thread)
  thread:set("id", next_thread_id)
  next_thread_id = next_thread_id + 1
end

local headers = {{
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer {key}",
}}
local counter = 0

function init(args)
  counter = {start} + id
end

function request()
  counter = counter + {stride}
  local body = '{{"context":{{"targetingKey":"user-' .. counter ..
    '","plan":"pro","region":"eu","appVersion":"2.3.0"}}}}'
  return wrk.format("POST", nil, headers, body)
end
"""


@dataclass(frozen=True)
class WrkResult:
    endpoint: str
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    non_2xx: int
    socket_errors: int
    wrk_cpu_cores: float  # CPU wrk itself used, in cores (of the same machine)
    server_cpu_cores: float  # CPU the server's processes used, in cores
    machine_cpu_cores: float  # CPU busy on the whole machine, in cores

    @property
    def busy_connections(self) -> float:
        """Requests in flight on average (Little's law): roughly --connections when every
        connection is served. Far fewer means some connections sat unanswered (granian's
        --backpressure does that), and wrk leaves requests that never complete out of its
        latencies."""
        return self.requests_per_s * self.mean_ms / 1000


_TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


def parse_wrk(endpoint: str, output: str) -> WrkResult:
    """The figures of `wrk --latency` output; raises when a required line is missing."""

    def milliseconds(label: str, pattern: str) -> float:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise BenchError(f"wrk output has no {label} line:\n{output}")
        return float(match.group(1)) * _TIME_UNITS_MS[match.group(2)]

    def percentile(label: str) -> float:
        return milliseconds(f"{label}%", rf"^\s*{label}%\s+{_TIME}\s*$")

    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    if rate is None or total is None:
        raise BenchError(f"wrk output has no request rate:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        endpoint=endpoint,
        requests=int(total.group(1)),
        requests_per_s=float(rate.group(1)),
        p50_ms=percentile("50"),
        p99_ms=percentile("99"),
        mean_ms=milliseconds("mean latency", rf"^\s*Latency\s+{_TIME}\s"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        wrk_cpu_cores=0.0,
        server_cpu_cores=0.0,
        machine_cpu_cores=0.0,
    )


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: everything but idle, iowait)."""
    fields = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes in process group `pgid`."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def run_wrk(
    endpoint: str,
    server: Server,
    path: str,
    key: str,
    *,
    seconds: int,
    connections: int,
    threads: int,
    start: int,
    script_dir: Path,
) -> WrkResult:
    """Drive `path` on `server` for `seconds` and return what wrk measured."""
    script = script_dir / f"{endpoint}-{start}.lua"
    script.write_text(LUA_TEMPLATE.format(key=key, start=start, stride=threads))
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        server.url(path),
    ]
    server_cpu_before = group_cpu_seconds(server.process.pid)
    wrk_cpu_before = _children_cpu_seconds()
    machine_before = machine_busy_seconds()
    started = time.monotonic()
    output = run_child(argv, os.environ, f"wrk against {endpoint}", timeout=seconds + 60)
    elapsed = time.monotonic() - started
    return replace(
        parse_wrk(endpoint, output),
        wrk_cpu_cores=(_children_cpu_seconds() - wrk_cpu_before) / elapsed,
        server_cpu_cores=(group_cpu_seconds(server.process.pid) - server_cpu_before) / elapsed,
        machine_cpu_cores=(machine_busy_seconds() - machine_before) / elapsed,
    )


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- database and Redis ---------------------------------------------------------------------


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new PostgreSQL database for this run, dropped afterwards; yields its URL."""
    import psycopg

    name = f"edgeflags_bench_{secrets.token_hex(5)}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.format(name=name)
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A key prefix of this run's own in Redis DB 13; its keys are deleted afterwards."""
    import redis

    prefix = f"edgeflags-bench-{secrets.token_hex(4)}"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


# --- the run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    duration: int
    warmup: int
    connections: int
    threads: int
    workers: int
    granian_args: tuple[str, ...]
    as_json: bool


def benchmark(options: Options) -> int:
    with ExitStack() as stack:
        work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="http-bench-")))
        database_url = stack.enter_context(fresh_database())
        prefix = stack.enter_context(redis_prefix())
        env = child_env(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DATABASE_URL": database_url,
                "REDIS_URL": REDIS_URL,
                "SECRET_KEY": secrets.token_urlsafe(50),
                "EDGEFLAGS_VAR_DIR": str(work_dir / "var"),
                "EDGEFLAGS_CACHE_PREFIX": prefix,
                # Digits only: django-environ's float() drops letters, so "1e9" would mean 19.
                "EDGEFLAGS_RATE_LIMIT_PER_KEY": "1000000000",
                "EDGEFLAGS_LOG_LEVEL": "WARNING",
            }
        )
        say = _say(options.as_json)
        say(f"database {database_url.rsplit('/', 1)[1]}, Redis {REDIS_URL} prefix {prefix}")
        run_child([sys.executable, "manage.py", "migrate", "--noinput"], env, "migrate")
        seeded = run_child([sys.executable, str(Path(__file__)), "--seed"], env, "seeding")
        key = _seeded_key(seeded)
        say(f"seeded {FLAG_COUNT} flags in environment production and a client key")

        app = stack.enter_context(
            granian(
                "evaluate",
                "config.wsgi:application",
                options.workers,
                env,
                work_dir,
                options.granian_args,
            )
        )
        wait_until_serving(app, "/healthz")
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        size = typical_evaluate_size(app, headers)
        say(f"typical evaluate response: {size} bytes; bare view answers the same size")
        bare_env = {**env, "BENCH_BODY_BYTES": str(size)}
        bare = stack.enter_context(
            granian(
                "bare",
                "bench.bench_app:application",
                options.workers,
                bare_env,
                work_dir,
                options.granian_args,
            )
        )
        wait_until_serving(bare, BARE_PATH)
        bare_size = len(post(bare.url(BARE_PATH), b"{}", headers)[1])
        if bare_size != size:
            raise BenchError(f"bare view answered {bare_size} bytes, expected {size}")

        targets = (("evaluate", app, EVALUATE_PATH), ("bare", bare, BARE_PATH))

        def drive(name: str, server: Server, path: str, seconds: int, start: int) -> WrkResult:
            return run_wrk(
                name,
                server,
                path,
                key,
                seconds=seconds,
                connections=options.connections,
                threads=options.threads,
                start=start,
                script_dir=work_dir,
            )

        warmups = []
        if options.warmup > 0:
            say(f"warm-up {options.warmup} s each")
            warmups = [drive(*target, options.warmup, start=0) for target in targets]
        results = []
        for name, server, path in targets:
            say(
                f"measuring {name}: {options.duration} s, {options.connections} connections, "
                f"{options.threads} wrk threads, {options.workers} granian workers"
                + (f" + {' '.join(options.granian_args)}" if options.granian_args else "")
            )
            # Targeting keys of the measured run start above the warm-up's: all new.
            results.append(drive(name, server, path, options.duration, start=1_000_000_000))
    return report(results, warmups, size, options)


def _seeded_key(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(SEED_MARKER):
            return str(json.loads(line[len(SEED_MARKER) :])["key"])
    raise BenchError(f"seeding printed no key:\n{output[-2000:]}")


def _say(quiet: bool) -> Callable[[str], None]:
    def say(message: str) -> None:
        print(f"# {message}", file=sys.stderr if quiet else sys.stdout, flush=True)

    return say


def report(results: list[WrkResult], warmups: list[WrkResult], size: int, options: Options) -> int:
    """Print the table (and the JSON line); 1 when any answer was not 2xx or a socket failed."""
    evaluate, bare = results
    ratio = evaluate.requests_per_s / bare.requests_per_s if bare.requests_per_s else 0.0
    print()
    print(
        f"{'endpoint':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} "
        f"{'non-2xx':>8} {'sock err':>8} {'cpu srv':>8} {'cpu wrk':>8} {'cpu all':>8}"
    )
    for r in results:
        print(
            f"{r.endpoint:<10} {r.requests_per_s:>9,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.requests:>9} {r.non_2xx:>8} {r.socket_errors:>8} "
            f"{r.server_cpu_cores:>8.2f} {r.wrk_cpu_cores:>8.2f} {r.machine_cpu_cores:>8.2f}"
        )
    print(
        f"evaluate/bare: {ratio:.2f} of the bare view's requests/s; response body {size} bytes; "
        "cpu columns are cores busy (server processes, wrk, whole machine)"
    )
    verdict = (
        "within"
        if evaluate.requests_per_s >= BUDGET_RPS and evaluate.p99_ms <= BUDGET_P99_MS
        else "OUTSIDE"
    )
    print(
        f"budget (DESIGN.md §6): >= {BUDGET_RPS:,.0f} req/s with p99 <= {BUDGET_P99_MS:g} ms "
        f"on {os.cpu_count()} cores -> evaluate is {verdict} it "
        "(wrk shares the cores)"
    )
    for r in warmups:
        if r.non_2xx or r.socket_errors:
            print(
                f"note: warm-up of {r.endpoint} had {r.non_2xx} non-2xx answers and "
                f"{r.socket_errors} socket errors (not counted above)"
            )
    if options.granian_args:
        print(f"granian ran with extra options {' '.join(options.granian_args)} (not the Procfile)")
    for r in results:
        others = r.machine_cpu_cores - r.server_cpu_cores - r.wrk_cpu_cores
        if others > OTHER_LOAD_WARNING_CORES:
            print(
                f"WARNING: {r.endpoint}: other processes kept {others:.2f} cores busy during the "
                "run; its figures are pessimistic (run again on a quiet machine)"
            )
        if r.busy_connections < 0.8 * options.connections:
            print(
                f"WARNING: {r.endpoint}: only {r.busy_connections:.1f} of {options.connections} "
                "connections were busy on average; requests the server left waiting are "
                "missing from the latencies"
            )
    failed = [r for r in results if r.non_2xx or r.socket_errors]
    for r in failed:
        print(
            f"WARNING: {r.endpoint}: {r.non_2xx} non-2xx answers, {r.socket_errors} socket errors"
        )
    if options.as_json:
        print(
            json.dumps(
                {
                    "evaluate": {**asdict(evaluate), "busy_connections": evaluate.busy_connections},
                    "bare": {**asdict(bare), "busy_connections": bare.busy_connections},
                    "warmup_non_2xx": {r.endpoint: r.non_2xx for r in warmups},
                    "ratio": round(ratio, 4),
                    "response_bytes": size,
                    "budget": {"requests_per_s": BUDGET_RPS, "p99_ms": BUDGET_P99_MS},
                    "within_budget": verdict == "within",
                    "duration_s": options.duration,
                    "connections": options.connections,
                    "wrk_threads": options.threads,
                    "granian_workers": options.workers,
                    "granian_extra_args": list(options.granian_args),
                    "cpus": os.cpu_count(),
                }
            )
        )
    return 1 if failed else 0


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the cleanups


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds measured per endpoint")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="granian workers per server")
    parser.add_argument(
        "--granian-args",
        default="",
        help="extra granian options for both servers, e.g. '--blocking-threads 1' "
        "(default: none, exactly as the Procfile)",
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed()
        return 0
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections")
    signal.signal(signal.SIGTERM, _terminate)
    options = Options(
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        threads=args.threads,
        workers=args.workers,
        granian_args=tuple(shlex.split(args.granian_args)),
        as_json=args.json,
    )
    try:
        return benchmark(options)
    except BenchError as error:
        print(f"http_bench: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("http_bench: interrupted (servers stopped, database dropped)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
