"""/metrics scraped from a live two-worker web server and a Celery worker sharing its metrics
directory, on PostgreSQL and Redis, with the shipped defaults (rate limits included)."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.support.databases import fresh_database
from tests.support.metrics import series, total
from tests.support.processes import (
    BIN,
    REPO,
    free_port,
    manage,
    production_env,
    running,
    wait_for_http,
    wait_until,
    web_server_argv,
    worker_argv,
)

pytestmark = pytest.mark.services

TOKEN = "live-metrics-token-for-tests"
EVALUATIONS = 40


def _call(env: dict[str, str], task: str) -> None:
    subprocess.run(
        [str(BIN / "celery"), "-A", "config", "call", task],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_metrics__two_web_workers_and_celery__one_scrape_adds_them_up(tmp_path: Path) -> None:
    if not settings.REDIS_URL:
        pytest.fail("this test needs Redis (set REDIS_URL or run one on 127.0.0.1:6379)")
    with fresh_database() as database:
        env = production_env(tmp_path, database, settings.REDIS_URL)
        env.update({"EDGEFLAGS_METRICS_TOKEN": TOKEN, "EDGEFLAGS_DEMO_CLIENTS": "600"})
        # Changed from the default (60 s) so the run writes the per-interval request counts.
        env["EDGEFLAGS_REQUEST_LOG_INTERVAL_S"] = "1"
        manage(env, "migrate", "--no-input")
        manage(env, "load_demo")
        key = (tmp_path / "traffic_client_key").read_text().strip()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        web = running("web", web_server_argv(port, workers=2), env, tmp_path)
        worker = running("worker", worker_argv(), env, tmp_path)
        with web as server, worker as celery:
            wait_for_http(f"{base}/healthz", server)

            def scrape() -> str:
                response = requests.get(
                    f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
                )
                assert response.status_code == 200, response.text
                return response.text

            # Without the token: refused, and saying how to authenticate.
            refused = requests.get(f"{base}/metrics", timeout=10)
            assert refused.status_code == 401
            assert refused.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'

            # Each evaluation on a connection of its own, so both workers take a share; a
            # save-data client is in a segment production's demo rollout ramps.
            decisions = []
            for i in range(EVALUATIONS):
                response = requests.post(
                    f"{base}/api/v1/evaluate",
                    json={"context": {"targetingKey": f"live-device-{i}", "saveData": True}},
                    headers={"Authorization": f"Bearer {key}", "Connection": "close"},
                    timeout=10,
                )
                assert response.status_code == 200, response.text
                decisions.append(response.json())

            # One exposure of a decision the server served, echoing its token.
            flag, served = next(
                (flag, d)
                for body in decisions
                for flag, d in body["flags"].items()
                if "decisionToken" in d["metadata"]
            )
            event = {
                "id": uuid.uuid4().hex,
                "type": "exposure",
                "flag": flag,
                "segment": served["metadata"]["segment"],
                "arm": served["metadata"]["arm"],
                "decisionToken": served["metadata"]["decisionToken"],
            }
            posted = requests.post(
                f"{base}/api/v1/events",
                json={"targetingKey": "live-device-0", "events": [event]},
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            assert posted.status_code == 202, posted.text

            # A request after the interval: its worker writes the counts it holds.
            time.sleep(1.1)
            later = requests.post(
                f"{base}/api/v1/evaluate",
                json={"context": {"targetingKey": "live-device-0"}},
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            assert later.status_code == 200, later.text

            # Unknown keys from one address: past the shipped burst (10 per worker, then 1/s)
            # they are answered 429 (any key: so this comes last).
            statuses = [
                requests.post(
                    f"{base}/api/v1/evaluate",
                    json={},
                    headers={"Authorization": f"Bearer efc_{uuid.uuid4().hex}"},
                    timeout=10,
                ).status_code
                for _ in range(40)
            ]
            assert statuses.count(429) >= 10, statuses

            _call(env, "telemetry.tasks.fold_telemetry")
            _call(env, "rollout.tasks.rollout_tick")
            wait_until(
                lambda: total(scrape(), "edgeflags_controller_decisions_total") > 0,
                timeout=60,
                what="the worker to fold telemetry and tick the controller",
                on_fail=celery.log,
            )
            text = scrape()
            log = server.log()

    evaluate = {"route": "/api/v1/evaluate", "method": "POST"}
    assert total(text, "edgeflags_http_requests_total", status="200", **evaluate) == EVALUATIONS + 1
    assert total(text, "edgeflags_http_requests_total", status="429", **evaluate) == statuses.count(
        429
    )
    assert (
        total(text, "edgeflags_http_request_duration_seconds_count", route="/api/v1/evaluate")
        == len(statuses) + EVALUATIONS + 1
    )
    assert total(text, "edgeflags_rate_limited_total", reason="unknown_keys") == statuses.count(429)
    assert total(text, "edgeflags_events_total", outcome="accepted") == 1
    assert total(text, "edgeflags_telemetry_folded_batches_total") == 1
    assert total(text, "edgeflags_telemetry_fold_success_timestamp_seconds") > 0

    # Both web workers serve production's snapshot, each reported with its own pid.
    held = series(text, "edgeflags_snapshot_version", environment="production")
    assert len({labels["pid"] for labels, _ in held}) >= 2, held
    assert {value for _, value in held} == {max(value for _, value in held)}
    assert series(text, "edgeflags_snapshot_published_timestamp_seconds", environment="production")
    assert key not in text
    assert "live-device" not in text
    # The client API's lean handler writes its request counts too, naming no client.
    assert "/api/v1/evaluate 200:" in log
    assert key not in log
    assert "live-device" not in log
