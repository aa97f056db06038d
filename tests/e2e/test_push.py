"""A rollback clicked in the console reaches browsers by the change stream within a second,
without polling: the OFREP web provider (@openfeature/web-sdk) and edgeflags.js, on a page of
another origin (the customer's site), both watched at once, one click."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route

from capability_probe.vocabulary import FIELDS
from tests.e2e.test_openfeature_web import IMPORTS
from tests.support.browser import ConsoleLog, WebServer, admin_login
from tests.support.processes import manage
from tests.support.shop import shop_server
from tests.support.treated import treated_client

pytestmark = pytest.mark.services

# Both clients on one page. Polling is off for both (the web provider's pollInterval 0,
# edgeflags.js's interval an hour), so only the stream can bring the change.
PAGE = """<!doctype html><html><head><title>Shop (push)</title>
<script src="WEB/static/edgeflags/probe.js"></script>
<script src="WEB/static/edgeflags/edgeflags.js"></script>
<script type="importmap">{"imports": IMPORTS}</script>
<script type="module">
import { OpenFeature, ProviderEvents } from "@openfeature/web-sdk";
import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";
window.seen = {provider: null, edgeflags: null};
window.requests = {evaluate: 0, bulk: 0};
const fetchOriginal = window.fetch;
window.fetch = (input, init) => {
  const url = String(input.url || input);
  if (url.includes("/api/v1/evaluate")) window.requests.evaluate++;
  if (url.includes("/ofrep/v1/evaluate/flags")) window.requests.bulk++;
  return fetchOriginal(input, init);
};
window.startBoth = async (baseUrl, key, context, overrides) => {
  await OpenFeature.setContext(context);
  await OpenFeature.setProviderAndWait(new OFREPWebProvider({
    baseUrl, headers: [["Authorization", "Bearer " + key]], pollInterval: 0,
  }));
  const client = OpenFeature.getClient();
  OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, () => {
    const now = client.getStringValue("lead-summary", "none");
    if (now === "lite" && !window.seen.provider) window.seen.provider = Date.now();
  });
  Edgeflags.on("change", (detail) => {
    if (detail.flagKey === "lead-summary" && detail.decision.variant === "lite"
        && !window.seen.edgeflags) window.seen.edgeflags = Date.now();
  });
  await Edgeflags.start({apiKey: key, baseUrl, clientId: context.targetingKey, overrides,
                         intervalMs: 3600000});
  return {provider: client.getStringValue("lead-summary", "none"),
          edgeflags: Edgeflags.decision("lead-summary").variant};
};
window.ready = true;
</script></head><body><h1>Shop</h1></body></html>
"""


def _probe_overrides(context: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The probe fields (probe.js's `overrides`) that make edgeflags.js's probe report the
    capability of `context`, so that both clients are the same client to the server."""
    overrides: dict[str, dict[str, Any]] = {}
    for capability in FIELDS:
        if capability.attribute and capability.wire in context:
            name = capability.probe_name or capability.wire
            overrides.setdefault(str(capability.section), {})[name] = context[capability.wire]
    return overrides


@pytest.fixture(scope="module")
def shop(web: WebServer) -> Iterator[str]:
    html = PAGE.replace("WEB", web.url).replace("IMPORTS", json.dumps(IMPORTS))
    with shop_server({"/": html}) as origin:
        yield origin


@pytest.fixture(scope="module")
def release_manager(web: WebServer) -> str:
    manage(
        web.env,
        "shell",
        "-c",
        "from django.contrib.auth.models import Group, User\n"
        "user = User.objects.create_user('push-rm', password='pw-for-tests-only', is_staff=True)\n"
        "user.groups.add(Group.objects.get(name='release manager'))\n",
    )
    return "push-rm"


def test_console_rollback__web_provider_and_edgeflags_js_on_another_origin__within_1s_by_stream(
    browser: Browser, page: Page, web: WebServer, shop: str, release_manager: str
) -> None:
    treated = treated_client(web.env, "lead-summary", "push")
    page.goto(f"{shop}/")
    page.wait_for_function("window.ready === true && window.Edgeflags")
    before = page.evaluate(
        "([url, key, ctx, overrides]) => window.startBoth(url, key, ctx, overrides)",
        [web.url, web.client_key, treated["context"], _probe_overrides(treated["context"])],
    )
    assert before == {"provider": treated["variant"], "edgeflags": treated["variant"]}
    page.wait_for_function("Edgeflags.streaming()", timeout=5_000)
    requests_before = page.evaluate("({...window.requests})")

    console = browser.new_context().new_page()
    admin_login(console, web, release_manager, "/admin/console/")
    console.goto(f"{web.url}/admin/console/flags/lead-summary?environment=production")
    panel = console.locator(f"#segment-{treated['segment']}")
    panel.locator("input[name=action][value=rollback]").check()
    panel.locator("textarea[name=reason]").fill("push test: rolled back from the console")
    console.once("dialog", lambda dialog: dialog.accept())
    clicked_at_ms = time.time() * 1000
    panel.locator("button[type=submit]").click()

    page.wait_for_function(
        "window.seen.provider !== null && window.seen.edgeflags !== null", timeout=5_000
    )
    seen = page.evaluate("window.seen")
    requests_after = page.evaluate("({...window.requests})")
    console.context.close()

    provider_ms, edgeflags_ms = seen["provider"] - clicked_at_ms, seen["edgeflags"] - clicked_at_ms
    assert provider_ms < 1000, f"the web provider saw the rollback {provider_ms:.0f} ms after"
    assert edgeflags_ms < 1000, f"edgeflags.js saw the rollback {edgeflags_ms:.0f} ms after"
    # Each refetched once, because of the event: neither polls.
    assert requests_after["bulk"] - requests_before["bulk"] == 1
    assert requests_after["evaluate"] - requests_before["evaluate"] == 1


def test_edgeflags_js__stream_refused__falls_back_to_polling(
    page: Page, web: WebServer, shop: str, console_log: ConsoleLog
) -> None:
    console_log.allow(r"status of 401 \(Unauthorized\)")
    # A stream URL that answers 401 (a key the stream does not know): EventSource gives up.
    page.route(
        "**/stream/v1/flags?**",
        lambda route: route.continue_(url=f"{web.stream_url}/stream/v1/flags?key=efc_unknown"),
    )
    page.goto(f"{shop}/")
    page.wait_for_function("window.ready === true && window.Edgeflags")
    page.evaluate(
        "([url, key]) => Edgeflags.start({apiKey: key, baseUrl: url, clientId: 'push-poll-1',"
        " intervalMs: 300})",
        [web.url, web.client_key],
    )
    page.wait_for_function("window.requests.evaluate >= 3", timeout=5_000)

    assert page.evaluate("Edgeflags.streaming()") is False


SET_VISIBILITY = """(state) => {
  Object.defineProperty(document, "visibilityState", {configurable: true, get: () => state});
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_edgeflags_js__hidden_past_inactivity_delay__stream_closed_then_reopened_and_refetched(
    page: Page, web: WebServer, shop: str
) -> None:
    def short_inactivity(route: Route) -> None:
        # The server's inactivityDelaySec (120 s by default), cut to 1 s for the test.
        answer = route.fetch()
        body = answer.json()
        for entry in body["decisions"]["eventStreams"]:
            entry["inactivityDelaySec"] = 1
        route.fulfill(response=answer, json=body)

    page.route("**/api/v1/probes", short_inactivity)
    page.goto(f"{shop}/")
    page.wait_for_function("window.ready === true && window.Edgeflags")
    page.evaluate(
        "([url, key]) => Edgeflags.start({apiKey: key, baseUrl: url, clientId: 'push-hidden-1',"
        " intervalMs: 3600000})",
        [web.url, web.client_key],
    )
    page.wait_for_function("Edgeflags.streaming()", timeout=5_000)

    page.evaluate(SET_VISIBILITY, "hidden")
    page.wait_for_function("!Edgeflags.streaming()", timeout=3_000)
    evaluations = page.evaluate("window.requests.evaluate")
    page.evaluate(SET_VISIBILITY, "visible")
    page.wait_for_function("Edgeflags.streaming()", timeout=5_000)
    page.wait_for_function(f"window.requests.evaluate > {evaluations}", timeout=5_000)
