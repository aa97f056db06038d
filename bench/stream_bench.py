"""The change stream: how many connections one `stream` process holds, and how fast a
rollback reaches the clients listening.

Run: .venv/bin/python bench/stream_bench.py [--clients 2000] [--rounds 5] [--hold 10000]
     [--server granian|uvicorn] [--capacity N] [--json]
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and Redis on 127.0.0.1:6379.

1. A fresh PostgreSQL database (dropped at the end): migrate, the demo data (its lead-summary
   rollout in production), a client key and a staff API token; Redis DB 13 under a prefix of
   the run's own.
2. The web server and the change stream with the Procfile's `web` and `stream` commands and
   the shipped settings. (`--server uvicorn` serves the same application with uvicorn, one
   process, for comparison: a change from the Procfile, printed as such.)
3. Latency: `--clients` asyncio clients open /stream/v1/flags as EventSource would (the key in
   the URL), from 127.0.0.2, 127.0.0.3, … with at most 100 per address (real clients come from
   many addresses; the shipped per-address cap is EDGEFLAGS_STREAM_MAX_PER_ADDRESS). Then, each
   round, one segment of lead-summary is rolled back through the management API (POST
   /api/v1/rollouts/…/segments/…/rollback, what the console and `manage.py rollback` call), and
   the time from sending that request to each client's receiving its refetchEvaluation event is
   recorded. Prints p50, p99 and max over every client of every round, and how many missed one.
4. Capacity: clients are added 1,000 at a time up to `--hold` (default: the shipped
   EDGEFLAGS_STREAM_MAX_CONNECTIONS, 10,000) and one more beyond it; the run reports how many
   the process held, what it refused the one beyond with, its memory (RSS) and a change's p99
   at that load. `--capacity N` raises the cap (a change from the default, printed as such)
   to see what the process holds beyond it; this machine's open-file limit (20,000 per
   process, client and server alike) bounds that.

The clients run on the same machine and share its two cores with the server: the latency is
an upper bound of the server's own.
Target (issue 15): with 2,000 clients, rollback → event p99 ≤ 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from http_bench import (
    APP_TARGET,
    BIN,
    REDIS_URL,
    BenchError,
    Server,
    Setup,
    expand,
    free_port,
    fresh_database,
    granian,
    procfile_command,
    redis_prefix,
    run_child,
    server_env,
    stop,
    wait_until_serving,
    with_option,
)

REPO = Path(__file__).resolve().parents[1]
STREAM_TARGET = "config.stream:application"
FLAG = "lead-summary"
PER_ADDRESS = 100
TARGET_P99_S = 1.0
CONNECT_TIMEOUT_S = 10.0


@dataclass
class Client:
    """One SSE connection, read as the server writes it (HTTP/1.1 chunked)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    closed: bool = False


async def open_client(port: int, path: str, source: str) -> tuple[int, Client | None, str]:
    """(status, client, error detail) of one connection from `source`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
    writer.write(request.encode() + b"\r\n")
    await writer.drain()
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if status != 200:
        length = int(headers.get("content-length", "0"))
        body = (await reader.readexactly(length)).decode() if length else ""
        writer.close()
        return status, None, body
    return status, Client(reader, writer), ""


async def read_events(client: Client) -> None:
    """Record the arrival of every data event until the connection ends."""
    buffer = b""
    try:
        while True:
            size_line = await client.reader.readline()
            if not size_line:
                break
            size = int(size_line.strip() or b"0", 16)
            chunk = await client.reader.readexactly(size + 2)
            if size == 0:
                break
            buffer += chunk[:-2]
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                for line in block.split(b"\n"):
                    if line.startswith(b"data: "):
                        client.events.append((time.monotonic(), json.loads(line[6:])))
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    client.closed = True


def sources(count: int, first: int = 2) -> Iterator[str]:
    """`count` source addresses, PER_ADDRESS on each, from the `first`th of 127.0.0.0/16."""
    for index in range(count):
        number = first + index // PER_ADDRESS
        yield f"127.0.{number // 250}.{number % 250 + 1}"


async def opened_in_time(port: int, path: str, source: str) -> tuple[int, Client | None, str]:
    try:
        return await asyncio.wait_for(open_client(port, path, source), CONNECT_TIMEOUT_S)
    except (TimeoutError, OSError) as error:
        return 0, None, f"no answer in {CONNECT_TIMEOUT_S:g} s ({type(error).__name__})"


async def connect_many(
    port: int, path: str, addresses: list[str]
) -> tuple[list[Client], list[tuple[int, str]]]:
    clients: list[Client] = []
    refused: list[tuple[int, str]] = []
    for start in range(0, len(addresses), 200):  # in waves: the listen backlog is finite
        batch = addresses[start : start + 200]
        results = await asyncio.gather(*(opened_in_time(port, path, a) for a in batch))
        for status, client, detail in results:
            if client is None:
                refused.append((status, detail))
            else:
                clients.append(client)
                asyncio.get_running_loop().create_task(read_events(client))
    return clients, refused


def management_post(web: Server, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        web.url(path),
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


async def round_trip(
    web: Server, token: str, segment: str, clients: list[Client], timeout: float = 10
) -> list[float]:
    """Roll `segment` back; each client's delay from the request to its event (s)."""
    marks = [len(c.events) for c in clients]
    sent_at = time.monotonic()
    path = f"/api/v1/rollouts/{FLAG}/production/segments/{segment}/rollback"
    await asyncio.to_thread(management_post, web, path, token, {"reason": "stream bench"})
    deadline = sent_at + timeout
    while time.monotonic() < deadline:
        if all(len(c.events) > m for c, m in zip(clients, marks, strict=True)):
            break
        await asyncio.sleep(0.01)
    return [
        c.events[m][0] - sent_at if len(c.events) > m else float("inf")
        for c, m in zip(clients, marks, strict=True)
    ]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@contextmanager
def stream_server(server: str, env: dict[str, str], log_dir: Path) -> Iterator[Server]:
    import subprocess

    port = free_port()
    if server == "granian":
        words = expand(procfile_command("stream"), {**env, "EDGEFLAGS_STREAM_PORT": str(port)})
        if words[-1] != STREAM_TARGET:
            raise BenchError(f"the Procfile's stream command does not end in {STREAM_TARGET}")
        if "/" not in words[0] and (BIN / words[0]).exists():
            words[0] = str(BIN / words[0])
        argv = with_option(with_option(words, "--host", "127.0.0.1"), "--port", str(port))
    else:
        argv = [
            str(BIN / "uvicorn"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--backlog",
            "4096",
            STREAM_TARGET,
        ]
    log_path = log_dir / "stream.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield Server("stream", process, port, log_path, argv)
    finally:
        stop(process)


def setup_data(env: dict[str, str]) -> tuple[str, str, list[str]]:
    """Migrate, the demo data, a client key, a staff token; the segments of FLAG's rollout
    in production that can still be rolled back."""
    manage = [str(BIN / "python"), "manage.py"]
    run_child([*manage, "migrate", "--no-input"], env, "migrate")
    run_child([*manage, "load_demo"], {**env, "EDGEFLAGS_DEMO_CLIENTS": "3000"}, "load_demo", 900)
    key = (
        run_child(
            [*manage, "create_api_key", "--environment", "production", "--scope", "client"],
            env,
            "key",
        )
        .strip()
        .splitlines()[-1]
        .strip()
    )
    run_child(
        [
            *manage,
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            "User.objects.create_superuser('bench', 'bench@example.com', 'bench-only')",
        ],
        env,
        "superuser",
    )
    token = run_child([*manage, "create_token", "bench"], env, "token").strip().splitlines()[-1]
    listing = (
        run_child(
            [
                *manage,
                "shell",
                "-c",
                "from rollout.models import SegmentRollout\n"
                "from rollout.selectors import with_segment_keys\n"
                "rows = SegmentRollout.objects.filter(plan__flag_state__flag__key="
                f"{FLAG!r}, plan__flag_state__environment__key='production')"
                ".exclude(state='rolled_back')\n"
                "print(','.join(sorted(r.segment_key for r in with_segment_keys(rows))))",
            ],
            env,
            "segments",
        )
        .strip()
        .splitlines()[-1]
    )
    return key, token.strip(), [s for s in listing.split(",") if s]


async def measure(options: argparse.Namespace) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_database() as database_url,
        redis_prefix() as prefix,
    ):
        env = server_env(database_url, REDIS_URL, Path(tmp), EDGEFLAGS_CACHE_PREFIX=prefix)
        if options.capacity is not None:
            env["EDGEFLAGS_STREAM_MAX_CONNECTIONS"] = str(options.capacity)
        key, token, segments = await asyncio.to_thread(setup_data, env)
        if len(segments) < options.rounds + 1:
            raise BenchError(f"only {len(segments)} segments to roll back: {segments}")
        with stream_server(options.server, env, Path(tmp)) as stream:
            env["EDGEFLAGS_STREAM_URL"] = f"http://127.0.0.1:{stream.port}"
            with granian("web", APP_TARGET, Setup("default"), env, Path(tmp)) as web:
                await asyncio.to_thread(wait_until_serving, web, "/healthz")
                await asyncio.to_thread(wait_until_serving, stream, "/healthz")
                path = f"/stream/v1/flags?key={key}"
                connecting = time.monotonic()
                clients, refused = await connect_many(
                    stream.port, path, list(sources(options.clients))
                )
                connect_s = time.monotonic() - connecting
                if refused:
                    raise BenchError(f"{len(refused)} of {options.clients} refused: {refused[:3]}")
                await asyncio.sleep(1)
                delays: list[float] = []
                for segment in segments[: options.rounds]:
                    delays += await round_trip(web, token, segment, clients)
                    await asyncio.sleep(0.5)
                latency = {
                    "clients": options.clients,
                    "rounds": options.rounds,
                    "p50_ms": round(percentile(delays, 0.50) * 1000, 1),
                    "p99_ms": round(percentile(delays, 0.99) * 1000, 1),
                    "max_ms": round(max(delays) * 1000, 1),
                    "missed": sum(1 for d in delays if d == float("inf")),
                    "connects_per_s": round(options.clients / connect_s),
                }
                # Capacity: add clients up to the hold target, and one more.
                held = list(clients)
                next_source = options.clients // PER_ADDRESS + 2
                beyond: list[tuple[int, str]] = []
                while len(held) < options.hold:
                    wave = min(1000, options.hold - len(held))
                    more, refused = await connect_many(
                        stream.port, path, list(sources(wave, next_source))
                    )
                    next_source += wave // PER_ADDRESS + 1
                    held += more
                    if refused:
                        beyond = refused
                        break
                if not beyond:
                    _, beyond = await connect_many(stream.port, path, list(sources(1, next_source)))
                rss = sum(
                    p.memory_info().rss
                    for p in [
                        psutil.Process(stream.process.pid),
                        *psutil.Process(stream.process.pid).children(recursive=True),
                    ]
                )
                await asyncio.sleep(1)
                loaded = await round_trip(web, token, segments[options.rounds], held, timeout=20)
                capacity = {
                    "held": sum(1 for c in held if not c.closed),
                    "beyond": [f"{status} {detail[:120]}" for status, detail in beyond[:1]],
                    "rss_mb": round(rss / 2**20, 1),
                    "rss_kb_per_connection": round(rss / 1024 / max(1, len(held)), 1),
                    "p99_ms_at_hold": round(percentile(loaded, 0.99) * 1000, 1),
                    "missed_at_hold": sum(1 for d in loaded if d == float("inf")),
                }
                for client in held:
                    client.writer.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return {"server": options.server, "latency": latency, "capacity": capacity}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hold", type=int, default=10000)
    parser.add_argument("--server", choices=("granian", "uvicorn"), default="granian")
    parser.add_argument(
        "--capacity", type=int, help="EDGEFLAGS_STREAM_MAX_CONNECTIONS (default: the shipped)"
    )
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    if options.server != "granian":
        print("changed from default: the stream served by uvicorn (Procfile: granian)")
    if options.capacity is not None:
        print(f"changed from default: EDGEFLAGS_STREAM_MAX_CONNECTIONS={options.capacity}")
    try:
        figures = asyncio.run(measure(options))
    except BenchError as error:
        print(f"stream_bench: {error}", file=sys.stderr)
        return 2
    if options.json:
        print(json.dumps(figures))
    else:
        lat, cap = figures["latency"], figures["capacity"]
        print(f"server: {figures['server']}")
        print(
            f"rollback -> event, {lat['clients']} clients x {lat['rounds']} rounds: "
            f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms, "
            f"missed {lat['missed']}"
        )
        print(f"connections opened: {lat['connects_per_s']}/s (the first {lat['clients']})")
        print(
            f"held {cap['held']} connections in one process (RSS {cap['rss_mb']} MB, "
            f"{cap['rss_kb_per_connection']} KB each); one more: {cap['beyond'] or 'accepted'}"
        )
        print(
            f"rollback -> event at {cap['held']} connections: p99 {cap['p99_ms_at_hold']} ms, "
            f"missed {cap['missed_at_hold']}"
        )
        met = lat["p99_ms"] <= TARGET_P99_S * 1000 and lat["missed"] == 0
        print(
            f"target (p99 <= {TARGET_P99_S * 1000:.0f} ms at {lat['clients']}): "
            f"{'met' if met else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
