"""The browser probe (/static/edgeflags/probe.js) in real headless Chromium, against a live server.

The page is served by Playwright on the server's origin (so the probe's relative endpoint and
localStorage are the server's), and loads the script from the live server's static files.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, Request, Route

from capability_probe.schema import FIELDS, TOP_LEVEL
from capability_probe.vocabulary import PRESSURE_STATES
from tests.support.browser import ConsoleLog, WebServer

pytestmark = pytest.mark.services

PAGE_PATH = "/e2e/probe"
PAGE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Edgeflags probe (e2e)</title>
<style>body{font:14px system-ui,sans-serif;margin:24px}pre{background:#f3f4f6;padding:12px}</style>
</head><body><h1 id="title">Edgeflags probe</h1><pre id="out"></pre>
<script src="/static/edgeflags/probe.js"></script></body></html>"""

QUEUE_KEY = "edgeflags.probeQueue"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# Chromium's deviceMemory values: the old set, and since Chrome 147 up to 32 on desktop.
CHROMIUM_MEMORY_GB = {0.25, 0.5, 1, 2, 4, 8, 16, 32}
# A 4xx/5xx answer to fetch() makes Chromium itself log this console error.
FAILED_LOAD = r"Failed to load resource: the server responded with a status of"

COLLECT_TIMED = """async (options) => {
  const started = performance.now();
  const probe = await EdgeflagsProbe.collect(options);
  return {probe, ms: performance.now() - started};
}"""
RUN = "([key, options]) => EdgeflagsProbe.run(Object.assign({apiKey: key}, options))"


def open_probe_page(page: Page, web: WebServer) -> None:
    url = web.url + PAGE_PATH
    page.route(url, lambda route: route.fulfill(content_type="text/html", body=PAGE_HTML))
    page.goto(url)
    page.wait_for_function("() => !!window.EdgeflagsProbe")


def show(page: Page, title: str, value: Any) -> None:
    """Put what the test saw on the page, so the screenshot is worth looking at."""
    page.evaluate(
        "([title, value]) => {"
        " document.getElementById('title').textContent = title;"
        " document.getElementById('out').textContent = JSON.stringify(value, null, 2); }",
        [title, value],
    )


def run(page: Page, web: WebServer, **options: Any) -> Any:
    return page.evaluate(RUN, [web.client_key, options])


def queue(page: Page) -> list[dict[str, Any]]:
    return page.evaluate(f"JSON.parse(localStorage.getItem('{QUEUE_KEY}') || '[]')")


def wait_for_empty_queue(page: Page, timeout_ms: int = 10_000) -> None:
    page.wait_for_function(f"localStorage.getItem('{QUEUE_KEY}') === '[]'", timeout=timeout_ms)


def is_probe_post(request: Request) -> bool:
    return request.method == "POST" and request.url.endswith("/api/v1/probes")


def assert_server_shape(probe: dict[str, Any]) -> None:
    """Only fields the server's schema knows (it answers 400 to anything else)."""
    # identityHash is sent only when the page gives one (signed identities).
    assert set(probe) == TOP_LEVEL - {"identityHash"}
    for section in ("device", "network", "platform"):
        assert set(probe[section]) <= set(FIELDS[section]), section
    assert set(probe["benchmark"]) == {"ms", "workload"}
    assert UUID4.match(probe["probeId"])
    assert probe["consent"] is True


# ------------------------------------------------------------------------------- collect


def test_collect__chromium__plausible_signals_within_1s(page: Page, web: WebServer) -> None:
    open_probe_page(page, web)

    result = page.evaluate(COLLECT_TIMED, {"clientId": "e2e-collect"})
    probe = result["probe"]
    show(page, f"collect() in {result['ms']:.0f} ms", probe)

    assert result["ms"] < 1000
    assert_server_shape(probe)
    assert probe["clientId"] == "e2e-collect"
    device, network, platform = probe["device"], probe["network"], probe["platform"]
    assert isinstance(device["cores"], int)
    assert device["cores"] >= 1
    assert device["memoryGb"] in CHROMIUM_MEMORY_GB
    assert device["wasmSimd"] is True
    # A page that is not cross-origin isolated has no SharedArrayBuffer: no WASM threads.
    assert device["wasmThreads"] is False
    # Chromium has WebGPU, so it answers (with --disable-gpu: no adapter, a real false).
    assert isinstance(device["webgpu"], bool)
    if not device["webgpu"]:
        assert device["shaderF16"] is False
    assert ("webnn" in device) == page.evaluate("'ml' in navigator")
    assert 0 <= device["batteryLevel"] <= 1
    assert isinstance(device["charging"], bool)
    assert device["storageGb"] > 0
    assert device.get("computePressure", "nominal") in PRESSURE_STATES
    assert network["effectiveType"] in ("slow-2g", "2g", "3g", "4g")
    assert network["rttMs"] >= 0
    assert 0 <= network["downlinkMbps"] <= 10
    assert network["saveData"] is False
    assert network["online"] is True
    assert platform["os"] == "Linux"
    assert platform["browser"] == "Chromium"  # the product, never the GREASE brand
    assert re.match(r"^\d+\.\d+\.\d+\.\d+$", platform["browserVersion"])
    assert platform["mobile"] is False
    assert 0 < probe["benchmark"]["ms"] <= 200
    assert probe["benchmark"]["workload"] == "matmul-f32-64x64-v1"


# As Safari or Firefox: none of the Chromium-only APIs exist at all.
WITHOUT_CHROMIUM_APIS = """
for (const name of ["deviceMemory", "connection", "gpu", "ml", "getBattery", "storage",
                    "userAgentData"]) {
  delete Navigator.prototype[name];
}
delete window.PressureObserver;
"""


def test_collect_and_run__apis_absent__fields_omitted_not_invented(
    page: Page, web: WebServer
) -> None:
    page.add_init_script(WITHOUT_CHROMIUM_APIS)
    open_probe_page(page, web)
    assert page.evaluate("'gpu' in navigator || 'deviceMemory' in navigator") is False

    probe = page.evaluate("EdgeflagsProbe.collect({clientId: 'e2e-no-apis'})")
    answer = run(page, web, clientId="e2e-no-apis")
    show(page, "APIs absent: only what was measured", {"probe": probe, "answer": answer})

    assert_server_shape(probe)
    # Feature tests always answer; everything an absent API would have said is left out.
    assert set(probe["device"]) == {"cores", "wasmSimd", "wasmThreads"}
    assert probe["network"] == {"online": True}
    # Without UA Client Hints the platform comes from the UA string; Linux has no version.
    assert probe["platform"]["os"] == "Linux"
    assert probe["platform"]["browser"] == "Chrome"
    assert probe["platform"]["mobile"] is False
    assert "osVersion" not in probe["platform"]
    # The server takes such a probe and stores the unknowns as unknown.
    assert answer["stored"] is True
    stored = web.profile("e2e-no-apis")
    assert stored is not None
    for column in ("memory_gb", "webgpu", "shader_f16", "webnn", "rtt_ms", "downlink_mbps"):
        assert stored[column] is None, column
    assert stored["effective_type"] == ""
    assert stored["cores"] == probe["device"]["cores"]


@pytest.mark.parametrize(
    ("request_adapter", "webgpu", "shader_f16"),
    [
        pytest.param("() => Promise.resolve(null)", False, False, id="no-adapter-is-false"),
        pytest.param(
            "() => Promise.resolve({features: new Set(['shader-f16'])})", True, True, id="f16"
        ),
        pytest.param("() => Promise.resolve({features: new Set()})", True, False, id="no-f16"),
        pytest.param("() => { throw new Error('boom'); }", None, None, id="throws-is-unknown"),
        pytest.param("() => new Promise(() => {})", None, None, id="hangs-is-unknown"),
    ],
)
def test_collect__webgpu_answers__mapped_as_documented(
    page: Page, web: WebServer, request_adapter: str, webgpu: bool | None, shader_f16: bool | None
) -> None:
    page.add_init_script(
        f"GPU.prototype.requestAdapter = {request_adapter};"
        # A battery API that never answers must not hold collect() up either.
        "Navigator.prototype.getBattery = () => new Promise(() => {});"
    )
    open_probe_page(page, web)

    result = page.evaluate(COLLECT_TIMED, {"clientId": "e2e-webgpu"})
    device = result["probe"]["device"]
    show(page, f"requestAdapter = {request_adapter}", result)

    assert device.get("webgpu") == webgpu
    assert device.get("shaderF16") == shader_f16
    assert "batteryLevel" not in device
    assert "charging" not in device
    assert result["ms"] < 1000


@pytest.mark.parametrize(
    ("report_after_ms", "expected"),
    [pytest.param(5, "serious", id="reports"), pytest.param(None, None, id="silent-is-unknown")],
)
def test_collect__compute_pressure__first_record_or_nothing_within_50ms(
    page: Page, web: WebServer, report_after_ms: int | None, expected: str | None
) -> None:
    # Headless Chromium has no pressure source; a stand-in observer shows both outcomes.
    page.add_init_script(
        "window.PressureObserver = class {"
        "  constructor(callback) { this.callback = callback; }"
        "  observe(source) {"
        f"   const after = {report_after_ms if report_after_ms is not None else 'null'};"
        "    const report = () => this.callback([{source, state: 'serious'}]);"
        "    if (after !== null) setTimeout(report, after);"
        "    return Promise.resolve(); }"
        "  disconnect() { window.pressureDisconnected = true; } };"
    )
    open_probe_page(page, web)

    result = page.evaluate(COLLECT_TIMED, {"clientId": "e2e-pressure"})
    show(page, f"compute pressure: {expected}", result)

    assert result["probe"]["device"].get("computePressure") == expected
    assert page.evaluate("window.pressureDisconnected") is True  # no observer left running


def test_collect__overrides__merged_and_null_removes(page: Page, web: WebServer) -> None:
    open_probe_page(page, web)

    probe = page.evaluate(
        "EdgeflagsProbe.collect({clientId: 'e2e-overrides', appVersion: '3.4.0', overrides: {"
        " device: {memoryGb: 1, webgpu: false, shaderF16: null},"
        " network: {effectiveType: '2g', rttMs: 2000},"
        " benchmark: {ms: 450}}})"
    )
    show(page, "overrides", probe)

    assert probe["device"]["memoryGb"] == 1
    assert probe["device"]["webgpu"] is False
    assert "shaderF16" not in probe["device"]
    assert probe["device"]["cores"] >= 1  # what was not overridden stays as measured
    assert probe["network"]["effectiveType"] == "2g"
    assert probe["network"]["rttMs"] == 2000
    assert probe["benchmark"] == {"ms": 450, "workload": "matmul-f32-64x64-v1"}
    assert probe["platform"]["appVersion"] == "3.4.0"


# ------------------------------------------------------------------------------- run / send


def test_run__live_server__probe_lands_and_profile_stored(page: Page, web: WebServer) -> None:
    open_probe_page(page, web)

    with page.expect_request(is_probe_post) as posted:
        answer = run(page, web, clientId="e2e-run", appVersion="3.4.0")
    request = posted.value
    body = request.post_data_json
    show(page, "run(): sent and answered", {"sent": body, "answer": answer})

    response = request.response()
    assert response is not None
    assert response.status == 200
    assert request.headers["authorization"] == f"Bearer {web.client_key}"
    assert request.headers["content-type"] == "application/json"
    assert_server_shape(body)
    assert body["clientId"] == "e2e-run"
    assert answer["stored"] is True
    assert answer["segment"]["key"]
    assert "smart-compose" in answer["decisions"]["flags"]
    assert answer["profile"]["cores"] == body["device"]["cores"]
    # Server side: the profile row holds what the browser measured, normalised.
    stored = web.profile("e2e-run")
    assert stored is not None
    assert stored["probe_count"] == 1
    assert stored["cores"] == body["device"]["cores"]
    assert stored["memory_gb"] == body["device"]["memoryGb"]
    assert stored["benchmark_ms"] == pytest.approx(body["benchmark"]["ms"], abs=0.01)
    assert 0 < stored["benchmark_ms"] <= 200
    assert stored["benchmark_workload"] == "matmul-f32-64x64-v1"
    assert stored["wasm_simd"] is True
    assert stored["webgpu"] == body["device"]["webgpu"]
    assert stored["effective_type"] == body["network"]["effectiveType"]
    assert stored["os"] == "Linux"
    assert stored["browser"] == "Chromium"
    assert stored["app_version"] == "3.4.0"
    assert stored["segment_key"] == answer["segment"]["key"]
    assert stored["runtime"]["online"] is True
    assert stored["runtime"]["batteryLevel"] == body["device"]["batteryLevel"]


def test_run__default_client_id__persisted_in_local_storage(page: Page, web: WebServer) -> None:
    open_probe_page(page, web)

    first = page.evaluate("EdgeflagsProbe.collect()")
    second = page.evaluate("EdgeflagsProbe.collect()")
    kept = page.evaluate("localStorage.getItem('edgeflags.clientId')")
    show(page, "default clientId", {"first": first["clientId"], "kept": kept})

    assert UUID4.match(first["clientId"])
    assert first["clientId"] == second["clientId"] == kept
    assert first["probeId"] != second["probeId"]


def test_run__offline__queued_then_sent_when_back_online(page: Page, web: WebServer) -> None:
    open_probe_page(page, web)
    posts: list[Request] = []
    page.on("request", lambda request: posts.append(request) if is_probe_post(request) else None)

    page.context.set_offline(True)
    answer = run(page, web, clientId="e2e-offline")
    waiting = queue(page)
    show(page, "offline: queued", waiting)

    assert answer == {"queued": True, "probeId": waiting[0]["probeId"]}
    assert [p["clientId"] for p in waiting] == ["e2e-offline"]
    assert waiting[0]["network"]["online"] is False
    assert posts == []  # offline, the probe does not even try
    assert web.profile("e2e-offline") is None

    # Back online, Chromium fires "online" and the probe sends its queue.
    page.context.set_offline(False)
    wait_for_empty_queue(page)
    show(page, "back online: sent", {"sent": [p.post_data_json for p in posts]})

    assert len(posts) == 1
    stored = web.profile("e2e-offline")
    assert stored is not None
    assert stored["runtime"]["online"] is False  # taken while offline, as it was
    assert stored["cores"] == waiting[0]["device"]["cores"]


def test_run__offline__queue_keeps_newest_five(page: Page, web: WebServer) -> None:
    open_probe_page(page, web)
    page.context.set_offline(True)

    ids = [run(page, web, clientId=f"e2e-queue-{i}")["probeId"] for i in range(7)]
    waiting = queue(page)
    show(page, "offline: 7 probes, 5 kept", waiting)

    assert [p["probeId"] for p in waiting] == ids[2:]
    page.context.set_offline(False)
    wait_for_empty_queue(page)
    # Sent oldest first; the two dropped probes never reach the server.
    assert web.profile("e2e-queue-6") is not None
    assert web.profile("e2e-queue-0") is None


def test_run__server_busy__queued_and_retried_with_backoff(
    page: Page, web: WebServer, console_log: ConsoleLog
) -> None:
    console_log.allow(FAILED_LOAD + " 503")
    open_probe_page(page, web)
    attempts: list[str] = []

    def busy_once(route: Route) -> None:
        attempts.append(route.request.post_data_json["probeId"])
        if len(attempts) == 1:
            route.fulfill(status=503, content_type="application/json", body="{}")
        else:
            route.fallback()

    page.route("**/api/v1/probes", busy_once)

    answer = run(page, web, clientId="e2e-busy")
    assert answer["queued"] is True
    assert [p["probeId"] for p in queue(page)] == [answer["probeId"]]

    wait_for_empty_queue(page)  # the first retry comes after ~2 s
    show(page, "503, then retried", {"attempts": attempts})

    assert attempts == [answer["probeId"]] * 2  # the same probe: the server dedupes by id
    assert web.profile("e2e-busy") is not None
    assert console_log.ours("warning") == []  # an expected degradation, not worth a warning


def test_run__rejected_4xx__not_retried_warned_once(
    page: Page, web: WebServer, console_log: ConsoleLog
) -> None:
    console_log.allow(FAILED_LOAD + " 400")
    open_probe_page(page, web)
    posts: list[Request] = []
    page.on("request", lambda request: posts.append(request) if is_probe_post(request) else None)

    outcomes = page.evaluate(
        """async (key) => {
          const outcomes = [];
          for (let i = 0; i < 2; i++) {
            try {
              await EdgeflagsProbe.run({apiKey: key, clientId: "e2e-bad",
                                        overrides: {device: {gpuVendor: "acme"}}});
              outcomes.push("resolved");
            } catch (error) {
              outcomes.push({status: error.status, message: error.message});
            }
          }
          return outcomes;
        }""",
        web.client_key,
    )
    page.wait_for_timeout(2500)  # longer than the first retry delay: nothing more is sent
    show(page, "400: rejected, not retried", outcomes)

    assert [o["status"] for o in outcomes] == [400, 400]
    assert "device.gpuVendor" in outcomes[0]["message"]
    assert len(posts) == 2
    assert queue(page) == []
    assert len(console_log.ours("warning")) == 1
    assert web.profile("e2e-bad") is None


def test_normal_operation__no_console_errors(
    page: Page, web: WebServer, console_log: ConsoleLog
) -> None:
    open_probe_page(page, web)

    answer = run(page, web, clientId="e2e-quiet")
    page.evaluate("EdgeflagsProbe.collect()")
    show(page, "normal operation: console", {"console": console_log.messages, "answer": answer})

    assert answer["stored"] is True
    assert console_log.errors() == []
    assert console_log.page_errors == []
    # Quiet: the probe logs nothing of its own when all goes well. (Chromium itself may warn
    # "No available adapters." when WebGPU has no GPU; that is the browser, not the probe.)
    assert console_log.ours("warning") == []
    assert console_log.ours("log") == []
