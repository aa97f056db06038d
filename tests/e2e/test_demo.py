"""The demo page in real headless Chromium: every emulated device class gets its rung."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page

pytestmark = pytest.mark.services


def _rung_on(page: Page, url: str) -> str:
    page.goto(url)
    panel = page.locator("#smart-compose")
    # A selector wait, not wait_for_function: the page's CSP forbids the eval that needs.
    page.locator("#smart-compose[data-ready='true']").wait_for(timeout=15_000)
    return str(panel.get_attribute("data-rung"))


@pytest.mark.parametrize(
    ("emulate", "rung"),
    [
        ("high-end", "edge"),
        ("no-webgpu", "cloud"),
        ("low-memory", "cloud"),
        ("slow-network", "lite"),
        ("save-data", "lite"),
        ("offline", "lite"),
        # Safari and Firefox report no memory and no connection: the link is measured and
        # the memory estimated. Firefox on macOS has no WebGPU, so no on-device model.
        ("iphone-safari", "edge"),
        ("mac-firefox", "cloud"),
    ],
)
def test_demo__emulated_class__panel_renders_its_rung(page: Page, web, emulate, rung) -> None:
    got = _rung_on(page, f"{web.url}/demo/?emulate={emulate}")

    assert got == rung
    suggestions = page.locator("#sc-suggestions button")
    assert suggestions.count() >= 1
    if rung == "edge":
        assert page.locator("#sc-badge").inner_text() == "On-device"
    if rung == "cloud":
        assert page.locator("#sc-why").inner_text().startswith("Not available here: edge:")
    estimated = page.locator("#sc-estimated").inner_text()
    if emulate in ("iphone-safari", "mac-firefox"):
        assert estimated.endswith(": memoryGb"), estimated
    else:
        assert estimated == ""


def test_demo__network_cut__cached_decision_served(page: Page, web) -> None:
    # Given a client that got its decision (edge) while online
    assert _rung_on(page, f"{web.url}/demo/?emulate=high-end") == "edge"

    # When the network goes away and the client re-evaluates
    page.context.set_offline(True)
    source = page.evaluate("Edgeflags.refresh().then(() => Edgeflags.source())")

    # Then the cached decision is still served (as what the server said offline gets: the
    # on-device rung needs no network), and the panel keeps its rung
    assert source == "offline"
    assert page.evaluate("Edgeflags.decision('smart-compose').variant") == "edge"
    cached = page.evaluate("JSON.parse(localStorage.getItem('edgeflags.decisions'))")
    assert cached["flags"]["smart-compose"]["variant"] == "edge"
    assert cached["snapshotVersion"] >= 1
    page.context.set_offline(False)


def test_demo__unknown_class__400_naming_the_parameter(web) -> None:
    response = requests.get(f"{web.url}/demo/?emulate=toaster", timeout=10)

    assert response.status_code == 400
    assert response.text.startswith("emulate: unknown class 'toaster'")


def test_demo__telemetry__exposure_and_inference_accepted(page: Page, web) -> None:
    # Given a high-end client on the edge rung of smart-compose (complete in its segment)
    assert _rung_on(page, f"{web.url}/demo/?emulate=high-end") == "edge"
    assert page.evaluate("Edgeflags.decision('smart-compose').metadata.arm") == "treatment"

    # When the page sends its queued telemetry
    with page.expect_response(lambda r: r.url.endswith("/api/v1/events")) as answer:
        page.evaluate("Edgeflags.flush()")

    # Then the server took the exposure and the in-page model's inference time
    response = answer.value
    assert response.status == 202
    sent = response.request.post_data_json
    assert {e["type"] for e in sent["events"]} >= {"exposure", "inference"}
    assert response.json()["accepted"] == len(sent["events"])
    inference = next(e for e in sent["events"] if e["type"] == "inference")
    served = page.evaluate("Edgeflags.decision('smart-compose').metadata.decisionToken")
    assert (inference["flag"], inference["decisionToken"], inference["ok"]) == (
        "smart-compose",
        served,
        True,
    )
    assert ".t" in served  # the token records the treatment arm the server served
