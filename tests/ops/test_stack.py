"""The real web server and a real Celery worker, in both run modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.support.processes import (
    BIN,
    REPO,
    child_env,
    free_port,
    manage,
    production_env,
    running,
    wait_for_http,
    wait_until,
    web_server_argv,
    worker_argv,
)
from tests.support.sse import EventStream

pytestmark = pytest.mark.services


def _readyz(port: int) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)


def _serve_and_consume_a_task(env: dict[str, str], log_dir: Path) -> dict[str, object]:
    """Migrate, start web + worker, send housekeeping through the broker; return /readyz."""
    manage(env, "migrate", "--no-input")
    port = free_port()
    with running("web", web_server_argv(port), env, log_dir) as web:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", web)
        before = _readyz(port)
        assert before.status_code == 200, before.text
        assert before.json()["checks"]["beat"]["status"] == "failing"  # nothing ran yet
        with running("worker", worker_argv(), env, log_dir) as worker:
            subprocess.run(
                [str(BIN / "celery"), "-A", "config", "call", "ops.tasks.housekeeping"],
                cwd=REPO,
                env=env,
                check=True,
                capture_output=True,
                timeout=60,
            )
            wait_until(
                lambda: _readyz(port).json()["checks"]["beat"]["status"] == "ok",
                timeout=60,
                what="the worker to run housekeeping",
                on_fail=worker.log,
            )
            assert "ops.tasks.housekeeping" in worker.log()
        after = _readyz(port)
        assert after.status_code == 200
        return after.json()


_FEATURE = {
    "name": "smart-reply",
    "enabled": True,
    "strategies": [{"name": "default", "parameters": {}, "constraints": []}],
}
_EXPORT = {"version": 2, "features": [_FEATURE]}


def test_embedded_mode__procfile_under_honcho__beat_task_reaches_worker_change_reaches_stream(
    tmp_path: Path,
) -> None:
    # Given no DATABASE_URL and no REDIS_URL: SQLite file and filesystem broker under var/
    port, stream_port = free_port(), free_port()
    env = child_env(
        {
            "DATABASE_URL": None,
            "REDIS_URL": None,
            "EDGEFLAGS_VAR_DIR": str(tmp_path),
            "EDGEFLAGS_PORT": str(port),
            "EDGEFLAGS_STREAM_PORT": str(stream_port),
            "EDGEFLAGS_WEB_WORKERS": "1",
            "EDGEFLAGS_WORKER_CONCURRENCY": "1",
            "PATH": f"{BIN}:{os.environ['PATH']}",
        }
    )
    manage(env, "migrate", "--no-input")
    export = tmp_path / "unleash.json"
    export.write_text(json.dumps(_EXPORT))
    manage(env, "import_unleash", str(export), "--environment", "production")
    key = manage(env, "create_api_key", "--environment", "production", "--scope", "client")

    # When web + stream + worker + beat start exactly as `make run` starts them
    honcho = [str(BIN / "honcho"), "start", "-f", "Procfile", "web", "stream", "worker", "beat"]
    with running("honcho", honcho, env, tmp_path) as stack:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", stack)
        wait_for_http(f"http://127.0.0.1:{stream_port}/healthz", stack)
        stream_health = requests.get(f"http://127.0.0.1:{stream_port}/healthz", timeout=5).json()
        # And a change reaches the change stream, with no Redis announcement to wake it: its
        # own check (EDGEFLAGS_STREAM_CHECK_INTERVAL_S) finds the new version.
        listening = EventStream(f"http://127.0.0.1:{stream_port}/stream/v1/flags?key={key.strip()}")
        opening = listening.next()
        export.write_text(json.dumps({**_EXPORT, "features": [{**_FEATURE, "enabled": False}]}))
        manage(env, "import_unleash", str(export), "--environment", "production")
        event = listening.next_event(timeout=3)
        listening.close()
        # Then beat sends housekeeping at its first start and the worker runs it
        wait_until(
            lambda: _readyz(port).json()["status"] == "ok",
            timeout=60,
            what="beat -> filesystem broker -> worker to run housekeeping",
            on_fail=stack.log,
        )
        body = _readyz(port).json()

    checks = body["checks"]
    assert stream_health == {"status": "ok", "connections": 0}
    assert event.data is not None
    assert event.data["type"] == "refetchEvaluation"
    assert int(str(event.id)) > int(str(opening.id))
    assert checks["database"]["reason"] == "sqlite reachable"
    assert checks["cache"]["reason"] == "local memory reachable"
    assert checks["broker"]["reason"].startswith("filesystem broker writable")
    assert "ops.tasks.housekeeping" in stack.log()
    assert (tmp_path / "edgeflags.sqlite3").is_file()


def test_production_mode__postgres_and_redis__ready_and_task_consumed(
    tmp_path: Path, fresh_postgres_database: str
) -> None:
    if not settings.REDIS_URL:
        pytest.fail("this test needs Redis (set REDIS_URL or run one on 127.0.0.1:6379)")
    env = production_env(tmp_path, fresh_postgres_database, settings.REDIS_URL)

    body = _serve_and_consume_a_task(env, tmp_path)

    assert body["status"] == "ok"
    checks = body["checks"]
    assert checks["database"]["reason"] == "postgresql reachable"
    assert checks["cache"]["reason"] == "Redis reachable"
    assert checks["broker"]["reason"].startswith("Redis broker reachable")
    assert not (tmp_path / "broker").exists()  # the filesystem broker is not used


def test_readyz__redis_url_on_closed_port__503_naming_redis(tmp_path: Path) -> None:
    closed_port = free_port()
    env = child_env(
        {
            "DATABASE_URL": None,
            "REDIS_URL": f"redis://127.0.0.1:{closed_port}/0",
            "EDGEFLAGS_VAR_DIR": str(tmp_path),
        }
    )
    manage(env, "migrate", "--no-input")
    port = free_port()
    with running("web", web_server_argv(port), env, tmp_path) as web:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", web)

        response = _readyz(port)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert {"cache", "broker"} <= set(body["failing"])
    assert body["checks"]["database"]["status"] == "ok"
    for name in ("cache", "broker"):
        assert f"Redis at 127.0.0.1:{closed_port}" in body["checks"][name]["reason"]


def _django_setup(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_settings__no_secret_key_outside_debug__refuses_to_start(tmp_path: Path) -> None:
    env = child_env({"SECRET_KEY": None, "DEBUG": "false", "EDGEFLAGS_VAR_DIR": str(tmp_path)})

    result = _django_setup(env)

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_settings__no_secret_key_in_debug__starts(tmp_path: Path) -> None:
    env = child_env({"SECRET_KEY": None, "DEBUG": "true", "EDGEFLAGS_VAR_DIR": str(tmp_path)})

    result = _django_setup(env)

    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_settings__generated_key_file__used_outside_debug(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("generated-by-make-run-" + "x" * 40)
    env = child_env({"SECRET_KEY": None, "DEBUG": "false", "EDGEFLAGS_VAR_DIR": str(tmp_path)})

    result = _django_setup(env)

    assert result.returncode == 0, result.stderr
