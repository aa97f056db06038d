"""Capability truth in a real browser: Chromium hiding what Safari and Firefox hide.

Safari and Firefox have no navigator.deviceMemory and no navigator.connection. Emulated here
by deleting both before any script runs; probe.js then measures the link itself, and the
server estimates the memory. Chromium's network emulation (DevTools protocol) throttles the
link. Headless Chromium with --disable-gpu has no WebGPU adapter, so smart-compose's edge rung
is out of reach and the network decides between cloud and lite.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from tests.e2e.test_probe import open_probe_page, show
from tests.support.browser import WebServer
from tests.support.processes import manage

AS_SAFARI = """
for (const name of ["deviceMemory", "connection"]) { delete Navigator.prototype[name]; }
"""
RUN = "([key, options]) => EdgeflagsProbe.run(Object.assign({apiKey: key}, options))"


@pytest.fixture(scope="module")
def demo_key(web: WebServer) -> str:
    """A client key of the demo environment, where smart-compose is generally available."""
    return manage(web.env, "create_api_key", "--environment", "demo", "--scope", "client").strip()


def _throttle(page: Page, latency_ms: int) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": latency_ms,
            "downloadThroughput": 250_000,  # bytes/s: 2 Mbps
            "uploadThroughput": 250_000,
        },
    )


def _probe_as_safari(page: Page, key: str, client_id: str) -> dict[str, Any]:
    return page.evaluate(RUN, [key, {"clientId": client_id}])


def test_safari_like__fast_network__measured_and_cloud(
    page: Page, web: WebServer, demo_key
) -> None:
    page.add_init_script(AS_SAFARI)
    open_probe_page(page, web)
    assert page.evaluate("'deviceMemory' in navigator || 'connection' in navigator") is False

    answer = _probe_as_safari(page, demo_key, "e2e-safari-fast")
    decision = answer["decisions"]["flags"]["smart-compose"]
    show(page, f"as Safari, fast link: {decision['variant']}", answer["profile"])

    profile = answer["profile"]
    assert "rttMs" not in profile  # nothing invented
    assert "memoryGb" not in profile
    assert profile["measuredRttSamples"] == 5
    assert 0 <= profile["measuredRttMs"] <= 100  # the loopback, measured
    assert profile["measuredDownlinkSamples"] >= 1
    assert profile["measuredDownlinkMbps"] > 10
    assert decision["variant"] == "cloud", decision
    assert "webgpu" in decision["unmet"]["edge"][0]


def test_safari_like__throttled_network__measured_and_lite(
    page: Page, web: WebServer, demo_key
) -> None:
    page.add_init_script(AS_SAFARI)
    open_probe_page(page, web)
    _throttle(page, latency_ms=450)

    answer = _probe_as_safari(page, demo_key, "e2e-safari-slow")
    decision = answer["decisions"]["flags"]["smart-compose"]
    show(page, f"as Safari, 450 ms link: {decision['variant']}", answer["profile"])

    assert answer["profile"]["measuredRttMs"] >= 400
    assert answer["profile"]["measuredRttSamples"] >= 3
    assert decision["variant"] == "lite", decision
    assert decision["unmet"]["cloud"] == ["rttMs ≤ 300"]
