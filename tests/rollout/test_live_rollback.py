"""A segment rolled back through one API process is served by another within a second: the
rung of a rung rollout, and the model version of a model rollout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from tests.support.processes import manage, production_env, seed, web_servers
from tests.support.treated import treated_client

pytestmark = pytest.mark.services


@dataclass
class Demo:
    urls: list[str]
    client_key: str
    staff_token: str
    treated: dict[str, Any]


@pytest.fixture
def live_demo(tmp_path: Path, fresh_postgres_database: str) -> Iterator[Demo]:
    """Two web servers on one PostgreSQL database and one Redis, with the demo loaded."""
    if not settings.REDIS_URL:
        pytest.fail("this test needs Redis (set REDIS_URL or run one on 127.0.0.1:6379)")
    env = production_env(tmp_path, fresh_postgres_database, settings.REDIS_URL)
    env["EDGEFLAGS_DEMO_CLIENTS"] = "3000"
    manage(env, "migrate", "--no-input")
    manage(env, "load_demo")
    seeded = seed(env, username="rm", group="release manager")
    (client_key,), token = seeded.keys, seeded.token
    treated = treated_client(env, "lead-summary", "user")
    with web_servers(("web-a", "web-b"), env, tmp_path) as urls:
        yield Demo(urls, client_key, token, treated)


def test_rollbacks_through_one_process__rung_and_model_served_by_the_other_within_1s(
    live_demo: Demo,
) -> None:
    web_a, web_b = live_demo.urls
    segment = live_demo.treated["segment"]
    body = {"context": live_demo.treated["context"], "flags": ["lead-summary"]}
    headers = {"Authorization": f"Bearer {live_demo.client_key}"}

    def served_on_b() -> dict[str, Any]:
        response = requests.post(f"{web_b}/api/v1/evaluate", json=body, headers=headers, timeout=5)
        return dict(response.json()["flags"]["lead-summary"])

    before = served_on_b()
    assert (before["variant"], before["metadata"]["arm"]) == (
        live_demo.treated["variant"],
        "treatment",
    )
    rolled_back = requests.post(
        f"{web_a}/api/v1/rollouts/lead-summary/production/segments/{segment}/rollback",
        json={"reason": "crash reports from support"},
        headers={"Authorization": f"Token {live_demo.staff_token}"},
        timeout=5,
    )
    changed_at = time.monotonic()
    assert rolled_back.status_code == 200, rolled_back.text
    assert rolled_back.json()["state"] == "rolled_back"
    while served_on_b()["variant"] != "lite":
        assert time.monotonic() - changed_at < 1.0, "web-b still serves the rung after 1 s"
        time.sleep(0.02)
    assert time.monotonic() - changed_at < 1.0
    after = served_on_b()
    assert (after["metadata"]["arm"], after["metadata"]["rolloutState"]) == (
        "control",
        "rolled_back",
    )

    _model_rollback(live_demo)


HIGH_END = {"memoryGb": 16, "benchmarkMs": 10, "webgpu": True, "rttMs": 50, "cores": 12}


def _model_rollback(live_demo: Demo) -> None:
    """v3 ramped to 100 % in one segment through web-a, then that segment rolled back: web-b
    serves v2 again within a second."""
    web_a, web_b = live_demo.urls
    staff = {"Authorization": f"Token {live_demo.staff_token}"}
    headers = {"Authorization": f"Bearer {live_demo.client_key}"}
    plan_url = f"{web_a}/api/v1/rollouts/smart-compose/production"
    body = {"context": {"targetingKey": "model-user", **HIGH_END}, "flags": ["smart-compose"]}

    def model_on_b() -> dict[str, Any]:
        response = requests.post(f"{web_b}/api/v1/evaluate", json=body, headers=headers, timeout=5)
        decision = response.json()["flags"]["smart-compose"]
        return dict(decision["metadata"])

    started = requests.post(
        plan_url, json={"targetModelVersion": "3.0.0", "reason": "CHG-1: v3"}, headers=staff,
        timeout=5,
    )  # fmt: skip
    assert started.status_code == 201, started.text
    segment = model_on_b()["segment"]
    for _ in range(len(started.json()["stages"]) - 1):  # stage 0 … complete (100 %)
        advanced = requests.post(
            f"{plan_url}/segments/{segment}/advance", json={"reason": "ramp"}, headers=staff,
            timeout=5,
        )  # fmt: skip
        assert advanced.status_code == 200, advanced.text
    deadline = time.monotonic() + 1.0
    while model_on_b()["model"]["version"] != "3.0.0":
        assert time.monotonic() < deadline, "web-b does not serve v3 after 1 s"
        time.sleep(0.02)
    rolled_back = requests.post(
        f"{plan_url}/segments/{segment}/rollback", json={"reason": "INC-9: v3 replies off"},
        headers=staff, timeout=5,
    )  # fmt: skip
    changed_at = time.monotonic()
    assert rolled_back.status_code == 200, rolled_back.text
    while model_on_b()["model"]["version"] != "2.0.0":
        assert time.monotonic() - changed_at < 1.0, "web-b still serves v3 after 1 s"
        time.sleep(0.02)
    assert time.monotonic() - changed_at < 1.0
    after = model_on_b()
    assert (after["arm"], after["rolloutState"]) == ("control", "rolled_back")
