"""The browser probe (/static/edgeflags/probe.js) in real headless Chromium, live server."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Page

from capability_probe.services import client_hash
from tests.e2e.conftest import WebServer

pytestmark = pytest.mark.services

CHROME_MEMORY = {0.25, 0.5, 1, 2, 4, 8, 16, 32}


def _open(page: Page, web: WebServer) -> None:
    page.goto(f"{web.url}/healthz")
    page.add_script_tag(url="/static/edgeflags/probe.js")


def _stored_profile(web: WebServer, client_id: str) -> dict[str, Any] | None:
    with psycopg.connect(web.database_url.replace("postgres://", "postgresql://")) as db:
        row = db.execute(
            "SELECT cores, memory_gb, benchmark_ms, wasm_simd, browser, segment_key "
            "FROM capability_probe_clientprofile WHERE client_hash = %s",
            [client_hash(client_id)],
        ).fetchone()
    if row is None:
        return None
    keys = ("cores", "memory_gb", "benchmark_ms", "wasm_simd", "browser", "segment_key")
    return dict(zip(keys, row, strict=True))


def test_probe_collect__chromium__plausible_signals_fast(page: Page, web) -> None:
    _open(page, web)

    started = time.monotonic()
    probe = page.evaluate("EdgeflagsProbe.collect({clientId: 'c-collect'})")
    elapsed = time.monotonic() - started

    assert elapsed < 1.5
    assert probe["clientId"] == "c-collect"
    assert probe["device"]["cores"] >= 1
    assert probe["device"]["wasmSimd"] is True
    assert probe["device"].get("memoryGb", 8) in CHROME_MEMORY
    assert 0 < probe["benchmark"]["ms"] < 200
    assert probe["benchmark"]["workload"] == "matmul-f32-64x64-v1"
    assert probe["platform"]["browser"]


def test_probe_collect__apis_missing__fields_omitted_not_invented(page: Page, web) -> None:
    # Given a browser without deviceMemory, connection info or WebGPU (as Safari/Firefox)
    page.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'deviceMemory', {get: () => undefined});"
        "Object.defineProperty(Navigator.prototype, 'connection', {get: () => undefined});"
        "Object.defineProperty(Navigator.prototype, 'gpu', {get: () => undefined});"
    )
    _open(page, web)

    probe = page.evaluate("EdgeflagsProbe.collect({clientId: 'c-safari-like'})")

    assert "memoryGb" not in probe["device"]
    assert "webgpu" not in probe["device"]
    assert "rttMs" not in probe["network"]
    assert "effectiveType" not in probe["network"]


def test_probe_run__web__profile_lands_with_plausible_values(page: Page, web) -> None:
    _open(page, web)

    answer = page.evaluate(
        "key => EdgeflagsProbe.run({apiKey: key, clientId: 'browser-client-1'})",
        web.client_key,
    )

    assert answer["stored"] is True
    assert answer["segment"]["key"]
    assert "smart-compose" in answer["decisions"]["flags"]
    stored = _stored_profile(web, "browser-client-1")
    assert stored is not None
    assert stored["cores"] >= 1
    assert 0 < stored["benchmark_ms"] < 200
    assert stored["wasm_simd"] is True
    assert stored["browser"]
    assert stored["segment_key"] == answer["segment"]["key"]


def test_probe_run__offline__queued_then_sent_when_back_online(page: Page, web) -> None:
    _open(page, web)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/v1/probes" in r.url else None)

    page.context.set_offline(True)
    page.evaluate("() => window.dispatchEvent(new Event('offline'))")
    queued = page.evaluate(
        "key => EdgeflagsProbe.run({apiKey: key, clientId: 'offline-client'})",
        web.client_key,
    )
    in_queue = page.evaluate("JSON.parse(localStorage.getItem(EdgeflagsProbe.queueKey))")

    assert queued == {"queued": True}
    assert [p["clientId"] for p in in_queue] == ["offline-client"]
    assert requests == []
    assert _stored_profile(web, "offline-client") is None

    page.context.set_offline(False)
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    page.wait_for_function("localStorage.getItem(EdgeflagsProbe.queueKey) === '[]'", timeout=10_000)

    assert _stored_profile(web, "offline-client") is not None
