"""/metrics: who may scrape it, what requests it counts and how, and processes that exited."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from api import client as client_api
from api.rate_limits import ClientRateLimits
from rollout.models import Environment
from rollout.services import flag_create
from segments.services import segmentation_run
from tests.support.metrics import scrape, series, total
from tests.support.processes import REPO, child_env

TOKEN = "metrics-token-for-tests"
RAW_ID = "raw-client-id-5ca1ab1e"


@pytest.fixture
def token(settings: Any) -> str:
    settings.EDGEFLAGS_METRICS_TOKEN = TOKEN
    return TOKEN


@pytest.fixture
def flags(environment: Environment, publish: Callable[..., Any]) -> None:
    publish(lambda: flag_create(key="temperature", kind="number", off_value=0.7))


# --- who may scrape -----------------------------------------------------------------------------


def test_scrape__no_token_set_outside_debug__403_saying_how_to_turn_it_on(
    client: Client, settings: Any
) -> None:
    settings.EDGEFLAGS_METRICS_TOKEN = ""
    settings.DEBUG = False

    response = client.get("/metrics")

    assert response.status_code == 403
    assert "EDGEFLAGS_METRICS_TOKEN" in response.json()["detail"]


def test_scrape__no_token_set_in_debug__open(client: Client, settings: Any) -> None:
    settings.EDGEFLAGS_METRICS_TOKEN = ""
    settings.DEBUG = True

    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Token {TOKEN}", f"Bearer {TOKEN}x", "Bearer é"],
)
def test_scrape__without_the_token__401_with_www_authenticate(
    client: Client, token: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}

    response = client.get("/metrics", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert response.json()["detail"]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_scrape__with_the_token__text_format_not_cached(
    client: Client, token: str, scheme: str
) -> None:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"{scheme} {token}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response["Cache-Control"] == "no-store"
    assert "# TYPE edgeflags_telemetry_fold_duration_seconds histogram" in response.content.decode()


def test_scrape__post__405(client: Client, token: str) -> None:
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 405


# --- requests --------------------------------------------------------------------------------


def _requests(text: str, route: str, method: str, status: str) -> float:
    return total(text, "edgeflags_http_requests_total", route=route, method=method, status=status)


def test_requests__counted_by_route_pattern__never_the_path_or_client_id(
    api: Callable[..., Any], client_key: str, flags: None
) -> None:
    route = "/api/v1/probes/<path:client_id>"
    before = scrape()

    for _ in range(3):
        assert api("POST", "/api/v1/evaluate", client_key, {"context": {}}).status_code == 200
    erased = api("DELETE", f"/api/v1/probes/{RAW_ID}", client_key)

    after = scrape()
    assert (
        _requests(after, "/api/v1/evaluate", "POST", "200")
        - _requests(before, "/api/v1/evaluate", "POST", "200")
        == 3
    )
    assert (
        _requests(after, route, "DELETE", str(erased.status_code))
        - _requests(before, route, "DELETE", str(erased.status_code))
        == 1
    )
    latency = "edgeflags_http_request_duration_seconds_count"
    assert (
        total(after, latency, route="/api/v1/evaluate")
        - total(before, latency, route="/api/v1/evaluate")
        == 3
    )
    assert RAW_ID not in after


def test_requests__unknown_method_and_pages_outside_the_api__bounded_labels(
    client: Client,
) -> None:
    before = scrape()

    client.generic("BREW", "/api/v1/evaluate")
    client.get("/admin/login/")
    client.get("/no/such/page/anywhere")

    after = scrape()
    assert (
        _requests(after, "/api/v1/evaluate", "other", "405")
        - _requests(before, "/api/v1/evaluate", "other", "405")
        == 1
    )
    assert (
        _requests(after, "(other)", "GET", "200") - _requests(before, "(other)", "GET", "200") == 1
    )
    assert (
        _requests(after, "(other)", "GET", "404") - _requests(before, "(other)", "GET", "404") == 1
    )
    assert "/admin/login/" not in after
    assert "/no/such" not in after


def test_rate_limited__429s_counted_by_the_limit_they_hit(
    api: Callable[..., Any], client_key: str, flags: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = ClientRateLimits(per_key=10_000, per_address=10_000, per_client=1, log_s=3600)
    monkeypatch.setattr(client_api, "rate_limits", limits)
    name = "edgeflags_rate_limited_total"
    before = total(scrape(), name, reason="client")
    body = {"context": {"targetingKey": "device-1"}}

    statuses = [
        api("POST", "/ofrep/v1/evaluate/flags", client_key, body).status_code for _ in range(6)
    ]

    assert statuses[:2] == [200, 200]  # a burst of two, then one a second
    assert statuses.count(429) >= 3
    assert total(scrape(), name, reason="client") - before == statuses.count(429)


# --- background jobs -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_segmentation_duration__failed_run__observed_as_failed() -> None:
    name = "edgeflags_segmentation_run_duration_seconds_count"
    before = scrape()

    with pytest.raises(ValueError, match="at least"):
        segmentation_run(trigger="test")  # no profiles: too few to segment

    after = scrape()
    assert total(after, name, outcome="failed") - total(before, name, outcome="failed") == 1
    assert total(after, name, outcome="succeeded") == total(before, name, outcome="succeeded")


# --- processes -----------------------------------------------------------------------------------

_GHOST = """
import sys
import django
django.setup()
from ops import metrics
metrics.snapshot_version.labels("ghost-environment").set(41)
print("set", flush=True)
sys.stdin.readline()
"""


def test_snapshot_version__per_process__gone_once_the_process_exited() -> None:
    env = child_env({"PROMETHEUS_MULTIPROC_DIR": str(django_settings.METRICS_DIR)})
    ghost = subprocess.Popen(
        [sys.executable, "-c", _GHOST],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert ghost.stdout is not None
        assert ghost.stdout.readline() == "set\n"

        alive = series(scrape(), "edgeflags_snapshot_version", environment="ghost-environment")
        assert alive == [({"environment": "ghost-environment", "pid": str(ghost.pid)}, 41.0)]
    finally:
        ghost.communicate("\n", timeout=30)

    assert not series(scrape(), "edgeflags_snapshot_version", environment="ghost-environment")
