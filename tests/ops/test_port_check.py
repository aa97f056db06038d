"""A port already in use is an error, at `make run` and in the Procfile's web command.

granian binds with SO_REUSEPORT: without the check a second server on a busy port binds too
and silently takes a share of the first one's connections.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from django.conf import settings

from ops.port_check import port_busy
from tests.support.databases import fresh_database
from tests.support.processes import (
    BIN,
    REPO,
    free_port,
    manage,
    production_env,
    running,
    wait_for_http,
    web_server_argv,
)


@contextmanager
def listening(*, reuse_port: bool) -> Iterator[int]:
    """A socket listening on a free port, bound as granian binds it when `reuse_port`."""
    with socket.socket() as sock:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_port_busy__free_port__none() -> None:
    assert port_busy("127.0.0.1", free_port()) is None


def test_port_busy__listener_with_so_reuseport__busy() -> None:
    # The case granian's own bind lets through.
    with listening(reuse_port=True) as port:
        assert (
            port_busy("127.0.0.1", port)
            == f"port {port} on 127.0.0.1 is already in use by another process"
        )


def test_port_busy__unknown_host__says_so() -> None:
    problem = port_busy("no-such-host.invalid", 8000)
    assert problem is not None
    assert problem.startswith("no-such-host.invalid is not an address")


def test_make_run__busy_port__fails_before_starting_anything() -> None:
    with listening(reuse_port=True) as port:
        result = subprocess.run(
            ["make", "--no-print-directory", "run", f"EDGEFLAGS_PORT={port}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "migrate" not in result.stdout  # failed first: nothing was migrated or started


def test_procfile_web__port_of_a_running_server__exits_and_the_first_keeps_every_connection(
    tmp_path: Path,
) -> None:
    with fresh_database() as database_url:
        env = production_env(tmp_path, database_url, settings.REDIS_URL)
        manage(env, "migrate", "--no-input")
        port = free_port()
        with running("first", web_server_argv(port), env, tmp_path) as first:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", first)

            # When the Procfile's web command starts on the same port, as honcho runs it
            second = subprocess.run(
                [str(BIN / "honcho"), "start", "-f", "Procfile", "web"],
                cwd=REPO,
                env={**env, "EDGEFLAGS_PORT": str(port), "PATH": f"{BIN}:{os.environ['PATH']}"},
                capture_output=True,
                text=True,
                timeout=60,
            )

            # Then it fails, saying why, and the first server still answers every request
            assert second.returncode == 1, second.stdout
            assert f"port {port} on 127.0.0.1 is already in use" in second.stdout
            answers = [
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5) for _ in range(20)
            ]
            assert [r.status_code for r in answers] == [200] * 20
            assert first.process.poll() is None
