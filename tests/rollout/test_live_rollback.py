"""A segment rolled back through one API process is served by another within a second."""

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


def test_rollback_through_one_process__baseline_served_by_the_other_within_1s(
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
