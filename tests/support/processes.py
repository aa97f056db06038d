"""Start the real programs (web server, Celery worker) in subprocesses for tests.

Each process runs in its own process group and is killed with it, so no test leaves a
server or worker behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# Variables a child must not inherit from the test process when it is given its own set.
# PROMETHEUS_MULTIPROC_DIR: a child derives its own from its EDGEFLAGS_VAR_DIR, so the metrics
# of one started stack are not mixed with another's (or the test process').
SERVICE_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "EDGEFLAGS_VAR_DIR",
    "EDGEFLAGS_CELERY_QUEUE",
    "PROMETHEUS_MULTIPROC_DIR",
)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(overrides: Mapping[str, str | None]) -> dict[str, str]:
    """The test process' environment without its service choice, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def production_env(tmp_path: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """A child environment on PostgreSQL and Redis, isolated from other users of that Redis."""
    suffix = os.urandom(4).hex()
    return child_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "EDGEFLAGS_VAR_DIR": str(tmp_path),
            # A queue and key prefix of its own so no other worker or test sees its traffic.
            "EDGEFLAGS_CELERY_QUEUE": f"edgeflags-test-{suffix}",
            "EDGEFLAGS_CACHE_PREFIX": f"edgeflags-test-{suffix}",
        }
    )


def manage(env: Mapping[str, str], *args: str, timeout: float = 180) -> str:
    """Run `manage.py args` in a child; return its output, raise on failure."""
    completed = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} exited {completed.returncode}:\n{completed.stderr}"
        )
    return completed.stdout


@dataclass
class Running:
    name: str
    process: subprocess.Popen[str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running(name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> Iterator[Running]:
    """Run `argv` for the duration of the block; its output goes to log_dir/name.log."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        yield Running(name, process, log_path)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def web_server_argv(port: int, workers: int = 1) -> list[str]:
    """The web server exactly as the Procfile starts it."""
    return [
        str(BIN / "granian"),
        "--interface",
        "wsgi",
        "--no-ws",
        "--blocking-threads",
        "4",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "config.wsgi:application",
    ]


def stream_server_argv(port: int) -> list[str]:
    """The change stream exactly as the Procfile starts it."""
    return [
        str(BIN / "granian"),
        "--interface",
        "asgi",
        "--no-ws",
        "--backlog",
        "4096",
        "--backpressure",
        "65536",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "config.stream:application",
    ]


def worker_argv() -> list[str]:
    """A Celery worker as the Procfile starts it (one pool process, to keep tests light)."""
    return [
        str(BIN / "celery"),
        "-A",
        "config",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        "1",
        "--without-gossip",
        "--without-mingle",
    ]


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, on_fail: Callable[[], str] = str
) -> None:
    """Poll `condition` until it holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{on_fail()}")


def wait_for_http(url: str, server: Running, timeout: float = 30) -> None:
    """Wait until `url` answers at all (any status)."""

    def answers() -> bool:
        if server.process.poll() is not None:
            raise AssertionError(f"{server.name} exited early:\n{server.log()}")
        try:
            requests.get(url, timeout=2)
        except (requests.ConnectionError, requests.Timeout):
            return False  # not listening yet, or still starting on a busy machine
        return True

    wait_until(answers, timeout, f"{url} to answer", server.log)


@contextmanager
def web_servers(
    names: tuple[str, ...], env: Mapping[str, str], log_dir: Path
) -> Iterator[list[str]]:
    """Web servers as the Procfile starts them, one per name, all answering; their URLs."""
    with ExitStack() as stack:
        urls = []
        for name in names:
            port = free_port()
            server = stack.enter_context(running(name, web_server_argv(port), env, log_dir))
            wait_for_http(f"http://127.0.0.1:{port}/healthz", server)
            urls.append(f"http://127.0.0.1:{port}")
        yield urls


@dataclass
class Seeded:
    keys: list[str]  # raw API keys, in the order of the scopes asked for
    token: str  # the staff user's management token
    output: str  # what the child printed (import_unleash's report)


def seed(
    env: Mapping[str, str],
    *,
    export: Path | None = None,
    scopes: tuple[str, ...] = ("client",),
    username: str = "ops",
    group: str | None = None,
) -> Seeded:
    """In one child process (each manage.py start costs seconds), through the services: an
    Unleash export imported into production (import_unleash), API keys of `scopes` there, and
    a staff user with a management token — a superuser, or a member of `group`."""
    user = (
        f"User.objects.create_superuser({username!r}, 'ops@example.com', 'pw-for-tests-only')"
        if group is None
        else f"User.objects.create_user({username!r}, 'ops@example.com', 'pw-for-tests-only', "
        f"is_staff=True)\nuser.groups.add(Group.objects.get(name={group!r}))"
    )
    code = (
        "import json\n"
        "from django.core.management import call_command\n"
        "from django.contrib.auth.models import Group, User\n"
        "from access.api_keys import api_key_create\n"
        "from access.management_tokens import management_token_create\n"
        "from rollout.audit import Actor\n"
        "from rollout.models import Environment\n"
        + (
            f"call_command('import_unleash', {str(export)!r}, environment='production')\n"
            if export
            else ""
        )
        + "env = Environment.objects.get(key='production')\n"
        f"keys = [api_key_create(environment=env, scope=s, name=s)[1] for s in {list(scopes)!r}]\n"
        f"user = {user}\n"
        "token = management_token_create(user=user, actor=Actor.cli())[1]\n"
        "print(json.dumps({'keys': keys, 'token': token}))\n"
    )
    output = manage(env, "shell", "-c", code)
    made = json.loads(output.strip().splitlines()[-1])
    return Seeded(made["keys"], made["token"], output)
