"""Requests/s and latency of POST /api/v1/evaluate over HTTP, served as in production.

Run: .venv/bin/python bench/http_bench.py [--duration 15] [--connections 32] [--threads 2]
     [--warmup 3] [--json]
     .venv/bin/python bench/http_bench.py --outage
Overrides (each also measures the shipped defaults beside it): [--workers N]
     [--granian-args '--blocking-threads 1'] [--env NAME=VALUE ...]
Needs wrk (apt-get install -y wrk); the plain run also PostgreSQL on 127.0.0.1:5432 (user
postgres, trust) and Redis on 127.0.0.1:6379; the outage run redis-server and PostgreSQL's
initdb/pg_ctl (it runs its own of both and touches neither shared server).
Exits 1 when any measured answer was not 2xx (or, in the outage run, /readyz did not say 503
while a service was down and 200 after), 2 when a step failed.

The servers run with the shipped defaults and the `web` command of the Procfile (read from
it at run time, so the benchmark cannot drift from it). Every setting the benchmark sets
differently is printed as "changed from default: NAME=value (why)".

The plain run:
1. creates a fresh PostgreSQL database (dropped at the end) and runs `manage.py migrate`;
   Redis DB 13 with a key prefix of its own (its keys are deleted at the end);
2. loads 20 flags through the real services (a child process running this script with
   --seed), in environment `production`, and a client API key: 19 with constraints,
   percentage rollouts and weighted variants, and smart-compose as the edge feature it is in
   the demo (its edge -> cloud -> lite -> off ladder, a segmentation model trained on 2,000
   synthetic profiles, model version 2.0.0 served and 3.0.0 with a delta ramping in every
   segment), so every request also takes the ladder path: capability segment, rung, model
   arm, `metadata.model` and a signed decision token. The capability hints vary with the
   targeting key (memory 2-16 GB, benchmark 10-99 ms, WebGPU in two requests of three, RTT
   40-439 ms), so the answers spread over the segments and rungs;
3. serves the app with the Procfile's web command, and a bare Django view
   (bench/bench_app.py) answering a fixed body of the size of a typical evaluate response
   with the same command line;
4. drives both with wrk (a new targetingKey per request) after a warm-up, and prints
   requests/s, p50 and p99 of each, their ratio and the answers per HTTP status.

The outage run (--outage) starts its own Redis and its own PostgreSQL cluster on free ports,
seeds as above, serves the app with the Procfile's web command and, under the same wrk load,
stops Redis for 10 s (then starts it again), then PostgreSQL for 10 s (then starts it again),
polling /readyz every 0.5 s. It prints the answers per status (and per second for any that
was not 2xx) and what /readyz said in each phase.

wrk runs on the same machine and takes CPU from the server: compare the two rows of one run
(the ratio) rather than absolute figures from different days.
Budget (docs/budgets.md): >= 4,800 requests/s with p99 <= 25 ms on the 2-core box.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROCFILE = REPO / "Procfile"
APP_TARGET = "config.wsgi:application"
BARE_TARGET = "bench.bench_app:application"

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgres://postgres@127.0.0.1:5432/{name}"
REDIS_URL = "redis://127.0.0.1:6379/13"

BUDGET_RPS = 4800.0
BUDGET_P99_MS = 25.0
# CPU used by neither the server nor wrk above which a run is reported as disturbed.
OTHER_LOAD_WARNING_CORES = 0.25

EVALUATE_PATH = "/api/v1/evaluate"
BARE_PATH = "/bench/fixed"
READYZ_PATH = "/readyz"
FLAG_COUNT = 20
SEED_MARKER = "BENCH-SEED "
SAMPLE_CONTEXT = {"plan": "pro", "region": "eu", "appVersion": "2.3.0"}
# The edge feature, seeded with the demo's ladder and two model versions (seed_ladder).
LADDER_FLAG = "smart-compose"
LADDER_PROFILES = 2000
MODEL_NAME = "tiny-reply"
MODEL_CURRENT, MODEL_NEXT = "2.0.0", "3.0.0"

# Variables the children must not inherit: the service choice, Django and granian knobs.
INHERITED_PREFIXES = ("EDGEFLAGS_", "GRANIAN_")
INHERITED_NAMES = ("DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")

# The outage run: how long each service is away, how long /readyz may take to say 200 again,
# and how often it is asked. Together with setup the whole run stays under about 90 s.
OUTAGE_BASELINE_S = 5.0
OUTAGE_DOWN_S = 10.0
OUTAGE_RECOVERY_MAX_S = 15.0
OUTAGE_AFTER_READY_S = 3.0
READYZ_POLL_S = 0.5


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


def capability_hints(n: int) -> dict[str, Any]:
    """The capability hints request `n` sends (LUA_TEMPLATE computes the same in Lua)."""
    return {
        "memoryGb": 2 + n % 15,
        "benchmarkMs": 10 + n % 90,
        "webgpu": n % 3 != 0,
        "rttMs": 40 + n % 400,
    }


def seed() -> None:
    """Create environment `production`, 20 enabled flags and a client key; print the key."""
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import transaction

    from access.api_keys import api_key_create
    from rollout.models import FlagState
    from rollout.services import environment_create, flag_create, flag_state_update, rule_create

    # One transaction: the snapshot is compiled and published once, when it commits.
    with transaction.atomic():
        environment = environment_create(key="production", name="Production")
        seed_segmentation()
        for index, name in enumerate(FLAG_NAMES[:FLAG_COUNT]):
            if name == LADDER_FLAG:
                seed_ladder(environment)
                continue
            kind = KINDS[index % len(KINDS)]
            flag = flag_create(key=name, kind=kind, off_value=OFF_VALUES[kind], tags=["bench"])
            state = FlagState.objects.get(flag=flag, environment=environment)
            flag_state_update(state=state, enabled=True, variants=_variants(kind, index))
            for rule in _rules(kind, index):
                rule_create(state=state, **rule)
        _, raw_key = api_key_create(environment=environment, scope="client", name="http bench")
    print(SEED_MARKER + json.dumps({"key": raw_key}), flush=True)


def seed_segmentation() -> None:
    """Capability segments as the scheduled job makes them: synthetic profiles, one run."""
    from demo.population import population_write
    from segments.services import segmentation_run

    population_write(clients=LADDER_PROFILES, seed=2026)
    segmentation_run(trigger="bench", seed=0)


def seed_ladder(environment: Any) -> None:
    """smart-compose as in the demo: its ladder, v2 served, v3 (with a delta from v2) ramping
    in every segment from the first stage, and one segment at 25 %."""
    from demo.data import SMART_COMPOSE_LADDER
    from rollout.audit import SYSTEM
    from rollout.edge_models import model_version_register, model_version_serve
    from rollout.engine.capability import SAVE_DATA_SEGMENT
    from rollout.models import FlagState
    from rollout.rollouts import rollout_plan_create, segment_transition
    from rollout.selectors import plan_rows_by_key
    from rollout.services import flag_create, flag_ladder_set, flag_state_update

    flag = flag_create(key=LADDER_FLAG, kind="string", off_value="off", tags=["bench", "edge"])
    flag_ladder_set(flag=flag, rungs=SMART_COMPOSE_LADDER, baseline="lite", safe="lite")
    state = FlagState.objects.get(flag=flag, environment=environment)
    flag_state_update(state=state, enabled=True, variants=[])
    base = f"https://models.example.com/{MODEL_NAME}"
    artifact: dict[str, Any] = {
        "name": MODEL_NAME,
        "format": "onnx",
        "requirements": [{"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"}],
    }
    current = model_version_register(
        flag=flag,
        version=MODEL_CURRENT,
        url=f"{base}/{MODEL_CURRENT}.onnx",
        size_bytes=48_000_000,
        sha256="2" * 64,
        **artifact,
    )
    upcoming = model_version_register(
        flag=flag,
        version=MODEL_NEXT,
        url=f"{base}/{MODEL_NEXT}.onnx",
        size_bytes=52_000_000,
        sha256="3" * 64,
        delta_from=MODEL_CURRENT,
        delta_url=f"{base}/{MODEL_CURRENT}-{MODEL_NEXT}.delta",
        delta_size_bytes=6_000_000,
        delta_sha256="4" * 64,
        **artifact,
    )
    model_version_serve(state=state, version=current)
    plan = rollout_plan_create(
        state=state, actor=SYSTEM, reason="bench: ramp v3", target_model=upcoming
    )
    first = next(r for r in plan_rows_by_key(plan) if r.segment_key != SAVE_DATA_SEGMENT)
    for _ in range(2):  # from the first stage on to 25 %
        segment_transition(row=first, action="advance", actor=SYSTEM, reason="bench: ramp v3")


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
        raise BenchError(f"{what} exited {process.returncode}:\n{(stderr or stdout)[-4000:]}")
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


# --- the Procfile's web command -------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


def procfile_web_command(procfile: Path = PROCFILE) -> str:
    """The server command of the Procfile's `web` line, as written: what follows the port
    check that precedes it (`… && exec granian …`; the benchmark picks free ports itself)."""
    return procfile_command("web", procfile)


def procfile_command(process: str, procfile: Path = PROCFILE) -> str:
    """The command of the Procfile's `process` line, less a port check before it."""
    for line in procfile.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == process:
            return command.rsplit("&&", 1)[-1].strip().removeprefix("exec ").strip()
    raise BenchError(f"{procfile} has no {process} line")


def expand(command: str, env: Mapping[str, str]) -> list[str]:
    """`command` split into words as a shell would, with ${NAME:-default} and $NAME taken
    from `env` (what honcho or a shell does with the Procfile line)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2) if match.group(1) else None
        if env.get(name):
            return env[name]
        return default or ""

    return shlex.split(_VARIABLE.sub(value, command))


def with_option(words: Sequence[str], option: str, value: str) -> list[str]:
    """`words` with `option` set to `value`: replaced where it is, else put before the last
    word (the WSGI target)."""
    out = list(words)
    for index, word in enumerate(out):
        if word == option and index + 1 < len(out):
            out[index + 1] = value
            return out
        if word.startswith(option + "="):
            out[index] = f"{option}={value}"
            return out
    return [*out[:-1], option, value, out[-1]]


def option_value(words: Sequence[str], option: str) -> str | None:
    """The value `words` give `option`, or None."""
    for index, word in enumerate(words):
        if word == option and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(option + "="):
            return word.split("=", 1)[1]
    return None


@dataclass(frozen=True)
class Setup:
    """How the servers run: the Procfile's web command and the shipped settings, or with the
    overrides given on the command line (each of which can move the figures)."""

    label: str
    workers: int | None = None
    granian_args: tuple[str, ...] = ()
    settings: tuple[tuple[str, str], ...] = ()

    @property
    def is_default(self) -> bool:
        return self.workers is None and not self.granian_args and not self.settings

    def changes(self, procfile_words: Sequence[str]) -> list[str]:
        """One line per way this setup differs from the shipped defaults."""
        lines = []
        if self.workers is not None:
            shipped = option_value(procfile_words, "--workers") or "granian's own"
            lines.append(f"granian --workers={self.workers} (Procfile: {shipped})")
        if self.granian_args:
            lines.append(f"granian {' '.join(self.granian_args)} (after the Procfile's options)")
        lines.extend(f"{name}={value} (--env)" for name, value in self.settings)
        return lines


def server_argv(setup: Setup, target: str, port: int, env: Mapping[str, str]) -> list[str]:
    """The Procfile's web command for `target` on `port`, with `setup`'s overrides."""
    words = expand(procfile_web_command(), {**env, "EDGEFLAGS_PORT": str(port)})
    if not words or words[-1] != APP_TARGET:
        raise BenchError(f"the Procfile's web command does not end in {APP_TARGET}: {words}")
    # What make/honcho find on PATH inside the virtualenv.
    if "/" not in words[0] and (BIN / words[0]).exists():
        words[0] = str(BIN / words[0])
    words = with_option(words, "--host", "127.0.0.1")
    words = with_option(words, "--port", str(port))
    if setup.workers is not None:
        words = with_option(words, "--workers", str(setup.workers))
    return [*words[:-1], *setup.granian_args, target]


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    argv: list[str]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@contextmanager
def granian(
    name: str, target: str, setup: Setup, env: Mapping[str, str], log_dir: Path
) -> Iterator[Server]:
    """`target` served with the Procfile's web command (and `setup`'s overrides)."""
    port = free_port()
    server_env = {**env, **dict(setup.settings)}
    argv = server_argv(setup, target, port, server_env)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Server(name, process, port, log_path, argv)
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


def get_json(url: str, timeout: float = 5) -> tuple[int, dict[str, Any]]:
    """One GET of a JSON document; (status, body) also for error statuses."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read() or b"{}")


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


def evaluate_body(n: int) -> bytes:
    """The body of request `n`, as LUA_TEMPLATE's request() writes it."""
    context = {"targetingKey": f"user-{n}", **SAMPLE_CONTEXT, **capability_hints(n)}
    return json.dumps({"context": context}).encode()


def typical_evaluate_size(server: Server, headers: Mapping[str, str]) -> int:
    """Median body size of evaluate answers over a few targeting keys; checks they are sane
    and that the edge feature's ladder path was taken (a rung, and the model on `edge`)."""
    sizes = []
    rungs: Counter[str] = Counter()
    for n in range(60):
        status, body = post(server.url(EVALUATE_PATH), evaluate_body(n), headers)
        if status != 200:
            raise BenchError(f"evaluate answered {status}: {body[:500]!r}")
        flags = json.loads(body).get("flags", {})
        if len(flags) != FLAG_COUNT:
            raise BenchError(f"evaluate answered {len(flags)} flags, expected {FLAG_COUNT}")
        ladder = flags[LADDER_FLAG]
        rungs[ladder.get("variant", "?")] += 1
        model = ladder.get("metadata", {}).get("model")
        if (ladder.get("variant") == "edge") != (model is not None):
            raise BenchError(f"{LADDER_FLAG} on {ladder.get('variant')} with model {model}")
        sizes.append(len(body))
    if not {"edge", "cloud"} <= set(rungs):
        raise BenchError(f"{LADDER_FLAG} served only {dict(rungs)}: the ladder path is untested")
    return int(statistics.median(sizes))


# --- wrk ----------------------------------------------------------------------------------

LUA_TEMPLATE = """
-- A new targetingKey per request: user-<n>, n unique across threads and runs.
-- Answers are counted per status, and those not 2xx also per second (wall clock), so a run
-- can tell which phase they fell in; done() prints the sums over every thread.
local next_thread_id = 0
local threads = {{}}
function setup(thread)
  thread:set("id", next_thread_id)
  next_thread_id = next_thread_id + 1
  table.insert(threads, thread)
end

local headers = {{
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer {key}",
}}
local counter = 0
statuses = {{}}
bad = {{}}

function init(args)
  counter = {start} + id
end

-- The capability hints as capability_hints(n) in Python computes them.
function request()
  counter = counter + {stride}
  local webgpu = "true"
  if counter % 3 == 0 then webgpu = "false" end
  local body = '{{"context":{{"targetingKey":"user-' .. counter ..
    '","plan":"pro","region":"eu","appVersion":"2.3.0","memoryGb":' .. (2 + counter % 15) ..
    ',"benchmarkMs":' .. (10 + counter % 90) .. ',"webgpu":' .. webgpu ..
    ',"rttMs":' .. (40 + counter % 400) .. '}}}}'
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status < 200 or status > 299 then
    local at = os.time() .. " " .. status
    bad[at] = (bad[at] or 0) + 1
  end
end

function done(summary, latency, requests)
  local all_statuses, all_bad = {{}}, {{}}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      all_statuses[status] = (all_statuses[status] or 0) + n
    end
    for at, n in pairs(thread:get("bad")) do
      all_bad[at] = (all_bad[at] or 0) + n
    end
  end
  for status, n in pairs(all_statuses) do
    io.write(string.format("BENCH-STATUS %d %d\\n", status, n))
  end
  for at, n in pairs(all_bad) do
    io.write(string.format("BENCH-BAD %s %d\\n", at, n))
  end
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
    statuses: dict[int, int] = field(default_factory=dict)  # answers per HTTP status
    # Answers that were not 2xx: (unix second, status) -> count.
    bad_by_second: dict[tuple[int, int], int] = field(default_factory=dict)
    setup: str = "shipped defaults"

    @property
    def busy_connections(self) -> float:
        """Requests in flight on average (Little's law): roughly --connections when every
        connection is served. Far fewer means some connections sat unanswered (granian's
        --backpressure does that), and wrk leaves requests that never complete out of its
        latencies."""
        return self.requests_per_s * self.mean_ms / 1000

    @property
    def non_2xx_by_status(self) -> dict[int, int]:
        return {s: n for s, n in sorted(self.statuses.items()) if not 200 <= s <= 299}

    @property
    def row_name(self) -> str:
        return self.endpoint if self.setup == "shipped defaults" else f"{self.endpoint}*"


_TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


def parse_wrk(endpoint: str, output: str) -> WrkResult:
    """The figures of `wrk --latency` output (and of the script's done()); raises when a
    required line is missing."""

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
    wrk_non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    statuses = {
        int(m.group(1)): int(m.group(2))
        for m in re.finditer(r"^BENCH-STATUS (\d+) (\d+)$", output, re.MULTILINE)
    }
    bad = {
        (int(m.group(1)), int(m.group(2))): int(m.group(3))
        for m in re.finditer(r"^BENCH-BAD (\d+) (\d+) (\d+)$", output, re.MULTILINE)
    }
    non_2xx = sum(n for s, n in statuses.items() if not 200 <= s <= 299)
    # wrk counts only statuses >= 400 itself; the script counts everything but 2xx.
    non_2xx = max(non_2xx, int(wrk_non_2xx.group(1)) if wrk_non_2xx else 0)
    return WrkResult(
        endpoint=endpoint,
        requests=int(total.group(1)),
        requests_per_s=float(rate.group(1)),
        p50_ms=percentile("50"),
        p99_ms=percentile("99"),
        mean_ms=milliseconds("mean latency", rf"^\s*Latency\s+{_TIME}\s"),
        non_2xx=non_2xx,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        wrk_cpu_cores=0.0,
        server_cpu_cores=0.0,
        machine_cpu_cores=0.0,
        statuses=statuses,
        bad_by_second=bad,
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


def wrk_argv(
    server: Server,
    path: str,
    key: str,
    *,
    seconds: int,
    connections: int,
    threads: int,
    start: int,
    script: Path,
) -> list[str]:
    """wrk driving `path` on `server` with a new targeting key per request."""
    script.write_text(LUA_TEMPLATE.format(key=key, start=start, stride=threads))
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        server.url(path),
    ]


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
    argv = wrk_argv(
        server,
        path,
        key,
        seconds=seconds,
        connections=connections,
        threads=threads,
        start=start,
        script=script_dir / f"{server.name}-{endpoint}-{start}.lua",
    )
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


# --- the outage run's own services (never the machine's shared ones) -------------------------


def run_tool(argv: Sequence[str], what: str, cwd: Path, timeout: float = 60) -> str:
    """Run a service's control tool (pg_ctl, initdb) to completion; its output or BenchError.
    Not in a process group of its own that is killed afterwards: pg_ctl leaves the server
    it started running."""
    try:
        done = subprocess.run(
            list(argv), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{what} did not finish within {timeout:g} s") from exc
    if done.returncode != 0:
        raise BenchError(
            f"{what} exited {done.returncode}:\n{(done.stderr or done.stdout)[-4000:]}"
        )
    return done.stdout


class OwnPostgres:
    """A PostgreSQL cluster of this run's own: initdb into a temporary folder, trust auth,
    listening on 127.0.0.1:`port` only, its socket in that folder. Run as the `postgres` user
    when this runs as root (PostgreSQL refuses root)."""

    def __init__(self, root: Path, port: int):
        found = sorted(
            glob.glob("/usr/lib/postgresql/*/bin/initdb"),
            key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
        )
        if not found:
            raise BenchError("no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")
        self.bin = Path(found[-1]).parent
        self.root = root
        self.data = root / "data"
        self.log_path = root / "postgres.log"
        self.port = port
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(root, user="postgres", group="postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self.running = False

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        run_tool(
            [
                *self.as_owner,
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",  # a throw-away cluster: initdb need not wait for the disk
            ],
            "initdb",
            self.root,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        run_tool(
            [
                *self.as_owner,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log_path),
                "-o",
                options,
                "-w",
                "-t",
                "30",
                "start",
            ],
            "pg_ctl start",
            self.root,
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        run_tool(
            [
                *self.as_owner,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                mode,
                "-w",
                "stop",
            ],
            "pg_ctl stop",
            self.root,
        )
        self.running = False

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    """A started OwnPostgres for the block; stopped and its folder removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="http-bench-pg-"))
    try:
        cluster = OwnPostgres(root, free_port())
        cluster.init()
        cluster.start()
        try:
            yield cluster
        finally:
            # Also when a start failed half-way: pg_ctl refuses (and we ignore) only when
            # no server of this folder runs.
            with suppress(BenchError):
                cluster.stop(mode="immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


class OwnRedis:
    """A Redis server of this run's own on 127.0.0.1:`port`, persisting nothing."""

    def __init__(self, root: Path, port: int):
        self.root = root
        self.port = port
        self.log_path = root / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise BenchError("redis-server not found (apt-get install redis-server)")
        # The server appends to its log file across restarts.
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--logfile",
                str(self.log_path),
            ],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_until_answering()

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)  # SIGTERM: with nothing to save it exits at once
            self.process = None

    def _wait_until_answering(self, timeout: float = 10) -> None:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.1)
        finally:
            client.close()
        raise BenchError(f"redis-server on port {self.port} did not answer within {timeout:g} s")


@contextmanager
def own_redis(root: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(root, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- the plain run --------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    duration: int
    warmup: int
    connections: int
    threads: int
    overrides: Setup
    as_json: bool
    keep_logs: bool = False


def server_env(database_url: str, redis_url: str, work_dir: Path, **extra: str) -> dict[str, str]:
    """What every server and management command of a run gets: the services (production
    mode, as the Procfile runs), a random SECRET_KEY (it has no default) and a temporary
    EDGEFLAGS_VAR_DIR; everything else is left to its shipped default."""
    # Where collectstatic would have written: WhiteNoise warns when the folder is missing.
    (work_dir / "var" / "static").mkdir(parents=True, exist_ok=True)
    return child_env(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "EDGEFLAGS_VAR_DIR": str(work_dir / "var"),
            **extra,
        }
    )


def seed_services(env: Mapping[str, str]) -> str:
    """Migrate and seed the run's database; the client key."""
    run_child([sys.executable, "manage.py", "migrate", "--noinput"], env, "migrate")
    seeded = run_child([sys.executable, str(Path(__file__)), "--seed"], env, "seeding")
    return _seeded_key(seeded)


def say_changes(say: Callable[[str], None], changes: Sequence[str]) -> None:
    for change in changes:
        say(f"changed from default: {change}")


def benchmark(options: Options) -> int:
    say = _say(options.as_json)
    setups = [Setup("shipped defaults")]
    if not options.overrides.is_default:
        # An override can move the figures: the shipped defaults are measured beside it.
        setups.insert(0, options.overrides)
    procfile_words = expand(procfile_web_command(), {})
    with ExitStack() as stack:
        work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="http-bench-")))
        database_url = stack.enter_context(fresh_database())
        prefix = stack.enter_context(redis_prefix())
        env = server_env(database_url, REDIS_URL, work_dir, EDGEFLAGS_CACHE_PREFIX=prefix)
        say(
            f"services: PostgreSQL database {database_url.rsplit('/', 1)[1]}, Redis {REDIS_URL} "
            "(production mode, as the Procfile runs); SECRET_KEY random"
        )
        changes = [
            f"EDGEFLAGS_CACHE_PREFIX={prefix} (this run's keys apart in the shared Redis; "
            "no effect on the figures)",
            f"EDGEFLAGS_VAR_DIR={work_dir / 'var'} (a temporary folder; nothing on the hot path)",
            "EDGEFLAGS_PORT, --host 127.0.0.1 (a free port per server; no effect on the figures)",
        ]
        say_changes(say, changes)
        seeding_started = time.monotonic()
        key = seed_services(env)
        say(
            f"migrated and seeded {FLAG_COUNT} flags in environment production and a client key "
            f"in {time.monotonic() - seeding_started:.0f} s"
        )

        results: list[WrkResult] = []
        warmups: list[WrkResult] = []
        sizes: dict[str, int] = {}
        for setup in setups:
            extra = setup.changes(procfile_words)
            say_changes(say, [f"{line} [rows marked *]" for line in extra])
            measured, warmed, size = measure_setup(setup, env, key, work_dir, options, say)
            results += measured
            warmups += warmed
            sizes[setup.label] = size
        all_changes = changes + setups[0].changes(procfile_words)
    return report(results, warmups, sizes, all_changes, options)


def measure_setup(
    setup: Setup,
    env: Mapping[str, str],
    key: str,
    work_dir: Path,
    options: Options,
    say: Callable[[str], None],
) -> tuple[list[WrkResult], list[WrkResult], int]:
    """Serve evaluate and the bare view as `setup` says, warm both up and measure both."""
    tag = "default" if setup.is_default else "changed"
    with ExitStack() as stack:
        app = stack.enter_context(granian(f"evaluate-{tag}", APP_TARGET, setup, env, work_dir))
        wait_until_serving(app, "/healthz")
        say(f"{setup.label}: {shlex.join(app.argv)}")
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        size = typical_evaluate_size(app, headers)
        say(f"typical evaluate response: {size} bytes; bare view answers the same size")
        bare_env = {**env, "BENCH_BODY_BYTES": str(size)}
        bare = stack.enter_context(granian(f"bare-{tag}", BARE_TARGET, setup, bare_env, work_dir))
        wait_until_serving(bare, BARE_PATH)
        bare_size = len(post(bare.url(BARE_PATH), b"{}", headers)[1])
        if bare_size != size:
            raise BenchError(f"bare view answered {bare_size} bytes, expected {size}")

        targets = (("evaluate", app, EVALUATE_PATH), ("bare", bare, BARE_PATH))

        def drive(name: str, server: Server, path: str, seconds: int, start: int) -> WrkResult:
            result = run_wrk(
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
            return replace(result, setup=setup.label)

        warmups = []
        if options.warmup > 0:
            say(f"warm-up {options.warmup} s each")
            warmups = [drive(*target, options.warmup, start=0) for target in targets]
        results = []
        for name, server, path in targets:
            say(
                f"measuring {name} ({setup.label}): {options.duration} s, "
                f"{options.connections} connections, {options.threads} wrk threads"
            )
            # Targeting keys of the measured run start above the warm-up's: all new.
            results.append(drive(name, server, path, options.duration, start=1_000_000_000))
    return results, warmups, size


def _seeded_key(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(SEED_MARKER):
            return str(json.loads(line[len(SEED_MARKER) :])["key"])
    raise BenchError(f"seeding printed no key:\n{output[-2000:]}")


def _say(quiet: bool) -> Callable[[str], None]:
    def say(message: str) -> None:
        print(f"# {message}", file=sys.stderr if quiet else sys.stdout, flush=True)

    return say


def _statuses_text(statuses: Mapping[int, int]) -> str:
    return ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items())) or "none"


def _result_json(result: WrkResult) -> dict[str, Any]:
    document = asdict(result)
    document["statuses"] = {str(s): n for s, n in result.statuses.items()}
    document["bad_by_second"] = [[t, s, n] for (t, s), n in sorted(result.bad_by_second.items())]
    document["busy_connections"] = result.busy_connections
    return document


def report(
    results: list[WrkResult],
    warmups: list[WrkResult],
    sizes: Mapping[str, int],
    changes: Sequence[str],
    options: Options,
) -> int:
    """Print the table (and the JSON line); 1 when any answer was not 2xx or a socket failed."""
    print()
    print(
        f"{'endpoint':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} "
        f"{'non-2xx':>8} {'sock err':>8} {'cpu srv':>8} {'cpu wrk':>8} {'cpu all':>8}"
    )
    for r in results:
        print(
            f"{r.row_name:<10} {r.requests_per_s:>9,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.requests:>9} {r.non_2xx:>8} {r.socket_errors:>8} "
            f"{r.server_cpu_cores:>8.2f} {r.wrk_cpu_cores:>8.2f} {r.machine_cpu_cores:>8.2f}"
        )
    print(
        "cpu columns are cores busy (server processes, wrk, whole machine); "
        "rows marked * ran with the overrides below, the others with the shipped defaults"
    )
    summaries: dict[str, dict[str, Any]] = {}
    for label, size in sizes.items():
        evaluate, bare = (r for r in results if r.setup == label)
        ratio = evaluate.requests_per_s / bare.requests_per_s if bare.requests_per_s else 0.0
        within = evaluate.requests_per_s >= BUDGET_RPS and evaluate.p99_ms <= BUDGET_P99_MS
        summaries[label] = {
            "evaluate": _result_json(evaluate),
            "bare": _result_json(bare),
            "ratio": round(ratio, 4),
            "response_bytes": size,
            "within_budget": within,
        }
        print(
            f"{label}: evaluate/bare {ratio:.2f} of the bare view's requests/s; response body "
            f"{size} bytes; budget (docs/budgets.md) >= {BUDGET_RPS:,.0f} req/s with p99 <= "
            f"{BUDGET_P99_MS:g} ms on {os.cpu_count()} cores -> evaluate is "
            f"{'within' if within else 'OUTSIDE'} it (wrk shares the cores)"
        )
    for r in results:
        print(f"answers by status, {r.row_name}: {_statuses_text(r.statuses)}")
    for change in changes:
        print(f"changed from default: {change}")
    for r in warmups:
        if r.non_2xx or r.socket_errors:
            print(
                f"note: warm-up of {r.row_name} had {r.non_2xx} non-2xx answers "
                f"({_statuses_text(r.non_2xx_by_status)}) and {r.socket_errors} socket errors "
                "(not counted above)"
            )
    for r in results:
        others = r.machine_cpu_cores - r.server_cpu_cores - r.wrk_cpu_cores
        if others > OTHER_LOAD_WARNING_CORES:
            print(
                f"WARNING: {r.row_name}: other processes kept {others:.2f} cores busy during the "
                "run; its figures are pessimistic (run again on a quiet machine)"
            )
        if r.busy_connections < 0.8 * options.connections:
            print(
                f"WARNING: {r.row_name}: only {r.busy_connections:.1f} of {options.connections} "
                "connections were busy on average; requests the server left waiting are "
                "missing from the latencies"
            )
    failed = [r for r in results if r.non_2xx or r.socket_errors]
    for r in failed:
        print(
            f"WARNING: {r.row_name}: {r.non_2xx} non-2xx answers "
            f"({_statuses_text(r.non_2xx_by_status)}), {r.socket_errors} socket errors"
        )
    if options.as_json:
        print(
            json.dumps(
                {
                    "setups": summaries,
                    "warmup_non_2xx": {f"{r.setup}/{r.endpoint}": r.non_2xx for r in warmups},
                    "changed_from_default": list(changes),
                    "budget": {"requests_per_s": BUDGET_RPS, "p99_ms": BUDGET_P99_MS},
                    "duration_s": options.duration,
                    "connections": options.connections,
                    "wrk_threads": options.threads,
                    "cpus": os.cpu_count(),
                }
            )
        )
    return 1 if failed else 0


# --- the outage run -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    at: float  # unix time
    status: int | None  # None: no answer
    failing: tuple[str, ...]


@dataclass
class Phase:
    name: str
    down: str | None  # the service that is away during the phase, if any
    recovering: bool = False  # right after a service was started again
    started: float = 0.0
    ended: float = 0.0
    samples: list[Sample] = field(default_factory=list)

    @property
    def ready_after_s(self) -> float | None:
        """Seconds from the phase's start to /readyz's first 200 in it."""
        for sample in self.samples:
            if sample.status == 200:
                return sample.at - self.started
        return None

    def readyz_text(self) -> str:
        counts = Counter("no answer" if s.status is None else str(s.status) for s in self.samples)
        failing = sorted({name for s in self.samples if s.status == 503 for name in s.failing})
        text = ", ".join(f"{status} x{n}" for status, n in sorted(counts.items()))
        if failing:
            text += f" (failing: {', '.join(failing)})"
        return text

    def readyz_as_expected(self) -> bool:
        """503 at every poll while a service is down; otherwise 200 by the end (a phase after
        a restart may start with 503s while the service comes back)."""
        if not self.samples:
            return False
        if self.down is not None:
            return all(s.status == 503 for s in self.samples)
        return self.samples[-1].status == 200


def readyz_sample(server: Server) -> Sample:
    at = time.time()
    try:
        status, body = get_json(server.url(READYZ_PATH), timeout=READYZ_POLL_S * 4)
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
        return Sample(at, None, ())
    return Sample(at, status, tuple(body.get("failing", ())))


def poll_phase(phase: Phase, server: Server, seconds: float, *, until_ready: bool = False) -> None:
    """Ask /readyz every READYZ_POLL_S for `seconds` or, with `until_ready`, until it says
    200 (at most OUTAGE_RECOVERY_MAX_S) and then OUTAGE_AFTER_READY_S more."""
    phase.started = phase.started or time.time()
    deadline = time.monotonic() + (OUTAGE_RECOVERY_MAX_S if until_ready else seconds)
    while time.monotonic() < deadline:
        tick = time.monotonic()
        sample = readyz_sample(server)
        phase.samples.append(sample)
        if until_ready and sample.status == 200 and phase.ready_after_s is not None:
            if deadline - time.monotonic() > OUTAGE_AFTER_READY_S:
                deadline = time.monotonic() + OUTAGE_AFTER_READY_S
            until_ready = False
        time.sleep(max(0.0, READYZ_POLL_S - (time.monotonic() - tick)))
    phase.ended = time.time()


def outage(options: Options) -> int:
    """The outage run: evaluate under wrk while Redis, then PostgreSQL, are away for a while."""
    say = _say(options.as_json)
    run_started = time.monotonic()
    with ExitStack() as stack:
        work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="http-bench-")))
        postgres = stack.enter_context(own_postgres())
        postgres.create_database("edgeflags")
        redis_server = stack.enter_context(own_redis(work_dir))
        env = server_env(postgres.url("edgeflags"), redis_server.url, work_dir)
        say(
            f"own services: PostgreSQL on 127.0.0.1:{postgres.port} ({postgres.root}), "
            f"Redis on 127.0.0.1:{redis_server.port}; SECRET_KEY random"
        )
        say_changes(
            say,
            [
                f"EDGEFLAGS_VAR_DIR={work_dir / 'var'} (a temporary folder; nothing on the hot "
                "path)",
                "EDGEFLAGS_PORT, --host 127.0.0.1 (a free port; no effect on the figures)",
            ],
        )
        seeding_started = time.monotonic()
        key = seed_services(env)
        say(
            f"migrated and seeded {FLAG_COUNT} flags in environment production and a client key "
            f"in {time.monotonic() - seeding_started:.0f} s"
        )
        app = stack.enter_context(
            granian("evaluate", APP_TARGET, Setup("shipped defaults"), env, work_dir)
        )
        wait_until_serving(app, "/healthz")
        say(f"shipped defaults: {shlex.join(app.argv)}")
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        typical_evaluate_size(app, headers)
        before = readyz_sample(app)
        if before.status != 200:
            raise BenchError(
                f"/readyz answered {before.status} before the outage:\n{app.log_tail()}"
            )

        argv = wrk_argv(
            app,
            EVALUATE_PATH,
            key,
            seconds=120,  # ended by SIGINT once the phases are over
            connections=options.connections,
            threads=options.threads,
            start=1_000_000_000,
            script=work_dir / "outage.lua",
        )
        phases = [
            Phase("before", None),
            Phase("Redis down", "Redis"),
            Phase("Redis back", None, recovering=True),
            Phase("PostgreSQL down", "PostgreSQL"),
            Phase("PostgreSQL back", None, recovering=True),
        ]
        say(
            f"outage under wrk ({options.connections} connections, {options.threads} threads): "
            f"{OUTAGE_BASELINE_S:g} s before, Redis away {OUTAGE_DOWN_S:g} s, "
            f"PostgreSQL away {OUTAGE_DOWN_S:g} s; /readyz every {READYZ_POLL_S:g} s"
        )
        setup_s = time.monotonic() - run_started
        wrk = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        # A step that fails from here on leaves the logs to read (kept before the servers stop).
        keep = [True]

        def keep_logs_if_asked() -> None:
            if keep[0]:
                keep_logs(work_dir, postgres)

        stack.callback(keep_logs_if_asked)
        try:
            # Each phase starts when its stop or start is asked for, so the phases cover the
            # whole load and "200 after" counts from the restart.
            poll_phase(phases[0], app, OUTAGE_BASELINE_S)
            phases[1].started = time.time()
            redis_server.stop()
            poll_phase(phases[1], app, OUTAGE_DOWN_S)
            phases[2].started = time.time()
            redis_server.start()
            poll_phase(phases[2], app, 0, until_ready=True)
            phases[3].started = time.time()
            postgres.stop()
            poll_phase(phases[3], app, OUTAGE_DOWN_S)
            phases[4].started = time.time()
            postgres.start()
            poll_phase(phases[4], app, 0, until_ready=True)
        finally:
            if wrk.poll() is None:
                wrk.send_signal(signal.SIGINT)  # wrk prints its summary and done() output
            try:
                output, errors = wrk.communicate(timeout=30)
            finally:
                stop(wrk)
        if wrk.returncode != 0:
            raise BenchError(f"wrk exited {wrk.returncode}:\n{errors[-4000:]}")
        result = parse_wrk("evaluate", output)
        elapsed = time.monotonic() - run_started
        status = outage_report(
            result, phases, (setup_s, elapsed), log_summary(app.log_path), options
        )
        keep[0] = bool(status) or options.keep_logs
    return status


def keep_logs(work_dir: Path, postgres: OwnPostgres) -> None:
    """Copy the run's logs (granian, Redis, PostgreSQL) to a folder that stays; say where."""
    kept = Path(tempfile.mkdtemp(prefix="http-bench-logs-"))
    for log in (*work_dir.glob("*.log"), postgres.log_path):
        if log.exists():
            shutil.copy(log, kept / log.name)
    print(f"server logs kept in {kept}", flush=True)


_LOG_LINE = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) (\S+) (.*)$")
_GRANIAN_LOG_LINE = re.compile(r"^\[(WARNING|ERROR|CRITICAL)\] (.*)$")


def log_summary(path: Path) -> list[str]:
    """The server log's warnings and errors, one line per distinct message (numbers left out)
    with its count, and how many tracebacks: where answers that were not 2xx come from."""
    counts: Counter[tuple[str, str, str]] = Counter()
    first: dict[tuple[str, str, str], str] = {}
    tracebacks = 0
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("Traceback"):
            tracebacks += 1
            continue
        match = _LOG_LINE.match(line)
        if match:
            level, source, message = match.groups()
        else:
            match = _GRANIAN_LOG_LINE.match(line)
            if not match:
                continue
            (level, message), source = match.groups(), "granian"
        kind = (level, source, re.sub(r"\d+", "N", message)[:60])
        counts[kind] += 1
        first.setdefault(kind, message[:160])
    lines = [
        f"{count} x {kind[0]} {kind[1]}: {first[kind]}" for kind, count in counts.most_common()
    ]
    return [*lines, f"{tracebacks} traceback(s)"]


def outage_report(
    result: WrkResult,
    phases: Sequence[Phase],
    seconds: tuple[float, float],  # setup (services, migrate, seed, server), whole run
    server_log: Sequence[str],
    options: Options,
) -> int:
    """Print answers per status and per phase, and what /readyz said; 1 when an answer was not
    2xx, a socket failed or /readyz did not say 503 while a service was down and 200 after."""
    setup_s, elapsed_s = seconds
    print()
    print(
        f"outage run: {result.requests} answers ({result.requests_per_s:,.0f}/s), "
        f"{result.non_2xx} not 2xx, {result.socket_errors} socket errors; "
        f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms; whole run {elapsed_s:.0f} s "
        f"(setup {setup_s:.0f} s)"
    )
    print(f"answers by status: {_statuses_text(result.statuses)}")
    print(f"{'phase':<16} {'seconds':>7}  {'not 2xx':>7}  /readyz")
    unexpected = []
    for index, phase in enumerate(phases):
        # wrk's clock has whole seconds: a second belongs to the phase its middle falls in.
        until = phases[index + 1].started if index + 1 < len(phases) else float("inf")
        since = phase.started if index else float("-inf")
        bad = Counter[int]()
        for (second, status), count in result.bad_by_second.items():
            if since <= second + 0.5 < until:
                bad[status] += count
        ready = phase.ready_after_s
        note = f"; 200 after {ready:.1f} s" if phase.recovering and ready is not None else ""
        print(
            f"{phase.name:<16} {phase.ended - phase.started:>7.1f}  {sum(bad.values()):>7}  "
            f"{phase.readyz_text()}{note}" + (f"  [not 2xx: {_statuses_text(bad)}]" if bad else "")
        )
        if not phase.readyz_as_expected():
            expected = "503 at every poll" if phase.down else "200 by the end"
            unexpected.append(f"{phase.name}: /readyz should say {expected}")
    if result.bad_by_second:
        print("not 2xx per second (unix time, status: count):")
        for (second, status), count in sorted(result.bad_by_second.items()):
            print(f"  {second} {status}: {count}")
    print("server log, warnings and errors:")
    for line in server_log:
        print(f"  {line}")
    for line in unexpected:
        print(f"WARNING: {line}")
    if result.non_2xx or result.socket_errors:
        print(
            f"WARNING: evaluate: {result.non_2xx} non-2xx answers "
            f"({_statuses_text(result.non_2xx_by_status)}), {result.socket_errors} socket errors"
        )
    if options.as_json:
        print(
            json.dumps(
                {
                    "outage": {
                        "answers": result.requests,
                        "requests_per_s": result.requests_per_s,
                        "statuses": {str(s): n for s, n in result.statuses.items()},
                        "non_2xx": result.non_2xx,
                        "socket_errors": result.socket_errors,
                        "phases": [
                            {
                                "name": p.name,
                                "seconds": round(p.ended - p.started, 2),
                                "readyz": [s.status for s in p.samples],
                                "ready_after_s": (
                                    None if p.ready_after_s is None else round(p.ready_after_s, 2)
                                ),
                            }
                            for p in phases
                        ],
                        "readyz_as_expected": not unexpected,
                        "server_log": list(server_log),
                        "elapsed_s": round(elapsed_s, 1),
                        "setup_s": round(setup_s, 1),
                    }
                }
            )
        )
    return 1 if result.non_2xx or result.socket_errors or unexpected else 0


# --- command line ---------------------------------------------------------------------------


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the cleanups


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds measured per endpoint")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--outage",
        action="store_true",
        help="the outage run: Redis, then PostgreSQL, away for 10 s each under load",
    )
    overrides = parser.add_argument_group(
        "overrides of the shipped defaults (the defaults are then measured too)"
    )
    overrides.add_argument("--workers", type=int, help="granian workers per server")
    overrides.add_argument(
        "--granian-args",
        default="",
        help="extra granian options after the Procfile's, e.g. '--blocking-threads 1'",
    )
    overrides.add_argument(
        "--env",
        type=_setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the servers, e.g. EDGEFLAGS_RATE_LIMIT_PER_CLIENT=1000000",
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="outage run: keep the server logs (they are kept anyway when it fails)",
    )
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed()
        return 0
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections")
    setup = Setup(
        "changed",
        workers=args.workers,
        granian_args=tuple(shlex.split(args.granian_args)),
        settings=tuple(args.env),
    )
    if args.outage and not setup.is_default:
        parser.error("the outage run measures the shipped defaults only: drop the overrides")
    signal.signal(signal.SIGTERM, _terminate)
    options = Options(
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        threads=args.threads,
        overrides=setup,
        as_json=args.json,
        keep_logs=args.keep_logs,
    )
    try:
        return outage(options) if args.outage else benchmark(options)
    except BenchError as error:
        print(f"http_bench: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("http_bench: interrupted (servers stopped, database dropped)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
