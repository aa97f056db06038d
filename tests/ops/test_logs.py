"""Logs operators can use: outages logged once per change of state, API requests counted per
interval (one line per request only when asked), and no raw client id in any line."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest
from django.test import Client, RequestFactory, override_settings
from django.urls import resolve
from django.utils.log import log_response

from ops import health
from ops.outage import Outage
from ops.request_log import RequestCounts
from rollout.snapshots import store as snapshot_store
from rollout.snapshots.store import SnapshotStore
from tests.support.processes import free_port

RAW_ID = "raw-client-id-4c0ffee"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(caplog: pytest.LogCaptureFixture, logger: str = "") -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith(logger)]


# --- Outage ---------------------------------------------------------------------------------


def test_outage__many_failures__one_warning_then_one_info_on_recovery(caplog) -> None:
    clock = Clock()
    outage = Outage(logging.getLogger("t.outage"), "Redis", clock=clock)
    caplog.set_level(logging.INFO, logger="t.outage")

    for _ in range(50):
        outage.failed(ConnectionError("refused"), consequence="serving held versions")
        clock.now += 1
    outage.recovered()
    outage.recovered()  # healthy again: nothing more

    assert messages(caplog, "t.outage") == [
        ("WARNING", "Redis failing: refused; serving held versions"),
        ("INFO", "Redis recovered after 50 s (49 more failure(s) not logged)"),
    ]


def test_outage__second_outage__logged_again() -> None:
    outage = Outage(logging.getLogger("t.outage2"), "db")
    outage.failed("one")
    outage.recovered()

    assert not outage.failing
    outage.failed("two")
    assert outage.failing


# --- request counts and the access log ------------------------------------------------------


def test_request_counts__interval_over__one_line_by_route_and_status(caplog) -> None:
    clock = Clock()
    counts = RequestCounts(interval_s=60, clock=clock)
    caplog.set_level(logging.INFO, logger="edgeflags.requests")

    for _ in range(3):
        counts.record("/api/v1/evaluate", 200, 2.0)
    counts.record("/api/v1/evaluate", 429, 0.5)
    assert messages(caplog, "edgeflags.requests") == []  # within the interval: counted only
    clock.now += 61
    counts.record("/ofrep/v1/evaluate/flags", 304, 9.25)

    assert messages(caplog, "edgeflags.requests") == [
        (
            "INFO",
            "api: 5 request(s) in the last 61 s, slowest 9.2 ms (/api/v1/evaluate 200: 3, "
            "/api/v1/evaluate 429: 1, /ofrep/v1/evaluate/flags 304: 1)",
        )
    ]


@pytest.fixture
def every_line(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def _all_text(caplog: pytest.LogCaptureFixture) -> str:
    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        if record.exc_info:
            lines.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(lines)


@pytest.mark.django_db
@override_settings(EDGEFLAGS_REQUEST_LOG_INTERVAL_S=0)
def test_erasure_refused__no_raw_client_id_logged__counted_by_route(every_line) -> None:
    client = Client()  # a fresh handler: the middleware reads the settings above

    response = client.delete(f"/api/v1/probes/{RAW_ID}", HTTP_AUTHORIZATION="Bearer ef_wrong")

    assert response.status_code == 401
    text = _all_text(every_line)
    assert RAW_ID not in text  # Django's own logger used to write "Unauthorized: <path>"
    assert "/api/v1/probes/<path:client_id> 401: 1" in text


@pytest.mark.django_db
@override_settings(EDGEFLAGS_ACCESS_LOG=True)
def test_access_log_on__one_json_line_per_request_with_the_route(
    every_line, client_key: str
) -> None:
    client = Client()

    client.delete(f"/api/v1/probes/{RAW_ID}", HTTP_AUTHORIZATION=f"Bearer {client_key}")
    client.post(
        "/api/v1/evaluate", "{}", "application/json", HTTP_AUTHORIZATION=f"Bearer {client_key}"
    )
    client.get("/admin/login/")  # not the API: not logged

    lines = [
        json.loads(r.getMessage().removeprefix("request "))
        for r in every_line.records
        if r.name == "edgeflags.requests" and r.getMessage().startswith("request ")
    ]
    assert [(line["method"], line["route"]) for line in lines] == [
        ("DELETE", "/api/v1/probes/<path:client_id>"),
        ("POST", "/api/v1/evaluate"),
    ]
    assert all(set(line) == {"method", "route", "status", "ms"} for line in lines)
    assert RAW_ID not in _all_text(every_line)
    assert client_key not in _all_text(every_line)


@override_settings(EDGEFLAGS_ACCESS_LOG=False)
@pytest.mark.django_db
def test_access_log_off__no_line_per_request(every_line, client_key: str) -> None:
    Client().post(
        "/api/v1/evaluate", "{}", "application/json", HTTP_AUTHORIZATION=f"Bearer {client_key}"
    )

    assert not [r for r in every_line.records if r.getMessage().startswith("request ")]


def test_django_request_logger__api_5xx__route_instead_of_the_path(every_line) -> None:
    request = RequestFactory().delete(f"/api/v1/probes/{RAW_ID}")
    request.resolver_match = resolve(request.path)

    class Failed:
        status_code = 500

    log_response(
        "%s: %s", "Internal Server Error", request.path, response=Failed(), request=request
    )

    assert messages(every_line, "django.request") == [
        ("ERROR", "Internal Server Error: /api/v1/probes/<path:client_id>")
    ]


def test_django_request_logger__admin_404__unchanged(every_line) -> None:
    request = RequestFactory().get("/admin/nothing-here/")

    class Missing:
        status_code = 404

    log_response("%s: %s", "Not Found", request.path, response=Missing(), request=request)

    assert messages(every_line, "django.request") == [
        ("WARNING", "Not Found: /admin/nothing-here/")
    ]


# --- outages on the paths that keep serving --------------------------------------------------


@pytest.fixture
def flaky_check() -> Iterator[dict[str, bool]]:
    state = {"ok": False}

    def check() -> str:
        if not state["ok"]:
            raise RuntimeError("the flaky dependency is away")
        return "the flaky dependency is back"

    health.register_check("flaky", check, required=False)
    yield state
    health._registered.pop("flaky", None)
    health._outages.pop("flaky", None)


@pytest.mark.django_db
def test_readyz__failing_then_passing__one_warning_and_one_info(
    client: Client, every_line, flaky_check: dict[str, bool]
) -> None:
    for _ in range(5):
        client.get("/readyz")
    flaky_check["ok"] = True
    for _ in range(3):
        client.get("/readyz")

    flaky = [m for m in messages(every_line, "ops.health") if "'flaky'" in m[1]]
    assert [level for level, _ in flaky] == ["WARNING", "INFO"]
    assert flaky[0][1] == "readiness check 'flaky' (optional) failing: the flaky dependency is away"
    assert "4 more failure(s)" in flaky[1][1]


@pytest.mark.django_db
def test_snapshot_store__redis_away_for_many_checks__one_warning(
    settings, every_line, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not settings.REDIS_URL:
        pytest.fail("this test needs Redis (set REDIS_URL or run one on 127.0.0.1:6379)")
    clock = Clock()
    store = SnapshotStore(check_interval_s=1.0, clock=clock)
    store.snapshot("production")  # first load, from the database
    # The store's own client, made by the store, for a port nothing listens on.
    reachable = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setattr(snapshot_store, "_redis_client", None)

    started = time.monotonic()
    for _ in range(4):  # four checks within the database check's 5 s: each one asks Redis
        clock.now += 1.01
        store.snapshot("production")
    elapsed = time.monotonic() - started
    settings.REDIS_URL = reachable  # Redis reachable again
    monkeypatch.setattr(snapshot_store, "_redis_client", None)
    clock.now += 1.01
    store.snapshot("production")

    lines = messages(every_line, "rollout.snapshots.store")
    assert [level for level, _ in lines] == ["WARNING", "INFO"]
    assert lines[0][1].startswith("snapshot version check via Redis failing: ")
    assert lines[0][1].endswith("; checking in the database")
    assert "3 more failure(s)" in lines[1][1]
    # Each check gives up on Redis at once: the request that makes it is not held up.
    assert elapsed < 2.0, elapsed
