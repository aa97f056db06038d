"""The client API from a page on another origin (the customer's own site), in Chromium.

The page is served by a plain HTTP server of its own on another port (tests/support/shop.py),
loads edgeflags.js and probe.js from the Edgeflags server and calls it by
its URL (`baseUrl`): every request is cross-origin, with the CORS preflight the
Authorization header brings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.e2e.test_capability_truth import _throttle
from tests.support.browser import WebServer
from tests.support.processes import manage
from tests.support.shop import shop_server

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def shop(web: WebServer) -> Iterator[str]:
    """The customer's site: one page that loads the Edgeflags scripts from `web`."""
    html = (
        "<!doctype html><html><head><title>Shop</title>"
        f'<script src="{web.url}/static/edgeflags/probe.js"></script>'
        f'<script src="{web.url}/static/edgeflags/edgeflags.js"></script>'
        "</head><body><h1>Shop</h1></body></html>"
    )
    with shop_server({"/": html}) as origin:
        yield origin


@pytest.fixture(scope="module")
def demo_key(web: WebServer) -> str:
    return manage(web.env, "create_api_key", "--environment", "demo", "--scope", "client").strip()


def _open_shop(page: Page, shop: str) -> None:
    page.goto(f"{shop}/")
    page.wait_for_function("window.Edgeflags && window.EdgeflagsProbe")


def _ofrep_bulk(page: Page, web: WebServer, key: str) -> dict[str, Any]:
    return page.evaluate(
        """async ([url, key]) => {
          const r = await fetch(url + "/ofrep/v1/evaluate/flags", {method: "POST",
            headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json"},
            body: JSON.stringify({context: {targetingKey: "e2e-shop-1"}})});
          return {status: r.status, etag: r.headers.get("ETag"), body: await r.json()};
        }""",
        [web.url, key],
    )


def test_shop_page__edgeflags_js_with_base_url__probe_and_decisions_cross_origin(
    page: Page, web: WebServer, demo_key, shop
) -> None:
    _open_shop(page, shop)
    preflights: list[str] = []
    page.on("request", lambda r: preflights.append(r.url) if r.method == "OPTIONS" else None)

    decisions = page.evaluate(
        "([key, url]) => Edgeflags.start({apiKey: key, baseUrl: url, clientId: 'e2e-shop-js'})",
        [demo_key, web.url],
    )

    assert page.evaluate("location.origin") == shop != web.url
    assert decisions["smart-compose"]["variant"] in ("cloud", "lite")
    assert page.evaluate("Edgeflags.decision('smart-compose').reason") != "ERROR"
    assert web.profile("e2e-shop-js") is not None  # the probe landed
    bulk = _ofrep_bulk(page, web, demo_key)
    assert bulk["status"] == 200
    assert bulk["etag"]  # exposed to the page
    assert {f["key"] for f in bulk["body"]["flags"]} >= {"smart-compose"}


def test_shop_page__throttled_link__rtt_measured_as_on_the_same_origin(
    page: Page, web: WebServer, demo_key, shop
) -> None:
    _open_shop(page, shop)
    _throttle(page, 200)

    answer = page.evaluate(
        "([key, url]) => EdgeflagsProbe.run({apiKey: key, baseUrl: url, clientId: 'e2e-shop-rtt'})",
        [demo_key, web.url],
    )

    measured = answer["profile"]["measuredRttMs"]
    # 200 ms of emulated latency per request: the preflights the Authorization header brings
    # and the timing of a foreign origin (Timing-Allow-Origin) do not skew it.
    assert 180 <= measured <= 320, measured
