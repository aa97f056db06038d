"""@openfeature/web-sdk with @openfeature/ofrep-web-provider (package.json) in Chromium, on a
page of another origin (tests/support/shop.py), against the live demo server: ready, every
type resolves, error codes arrive as such, and one change reports one changed flag."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.support.browser import WebServer
from tests.support.processes import manage
from tests.support.shop import shop_server

pytestmark = pytest.mark.services

IMPORTS = {
    "@openfeature/core": "/m/@openfeature/core/dist/esm/index.js",
    "@openfeature/web-sdk": "/m/@openfeature/web-sdk/dist/esm/index.js",
    # The web provider's own ofrep-core (2.x), installed beside it.
    "@openfeature/ofrep-core": (
        "/m/@openfeature/ofrep-web-provider/node_modules/@openfeature/ofrep-core/index.esm.js"
    ),
    "@openfeature/ofrep-web-provider": "/m/@openfeature/ofrep-web-provider/index.esm.js",
}
# The page starts the SDK with the context the test gives, and records what it sees.
PAGE = """<!doctype html><html><head><title>Shop (OpenFeature)</title>
<script type="importmap">{"imports": IMPORTS}</script>
<script type="module">
import { OpenFeature, ProviderEvents } from "@openfeature/web-sdk";
import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";
window.changes = [];
window.startOpenFeature = async (baseUrl, key, context, pollInterval) => {
  OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, (event) => {
    window.changes.push(event.flagsChanged || []);
  });
  await OpenFeature.setContext(context);
  await OpenFeature.setProviderAndWait(new OFREPWebProvider({
    baseUrl, headers: [["Authorization", "Bearer " + key]], pollInterval,
  }));
  window.client = OpenFeature.getClient();
  return OpenFeature.getClient().providerStatus;
};
window.details = (kind, flag, fallback) => {
  const method = {boolean: "getBooleanDetails", string: "getStringDetails",
                  number: "getNumberDetails", object: "getObjectDetails"}[kind];
  const d = window.client[method](flag, fallback);
  return {value: d.value, variant: d.variant, reason: d.reason, errorCode: d.errorCode};
};
window.ready = true;
</script></head><body><h1>Shop</h1></body></html>
""".replace("IMPORTS", json.dumps(IMPORTS))


@pytest.fixture(scope="module")
def shop() -> Iterator[str]:
    with shop_server({"/": PAGE}) as origin:
        yield origin


@pytest.fixture(scope="module")
def demo_key(web: WebServer) -> str:
    return manage(web.env, "create_api_key", "--environment", "demo", "--scope", "client").strip()


def _start(page: Page, shop: str, web: WebServer, key: str, context: dict[str, Any]) -> str:
    page.goto(f"{shop}/")
    page.wait_for_function("window.ready === true")
    return str(
        page.evaluate(
            "([url, key, ctx]) => window.startOpenFeature(url, key, ctx, 500)",
            [web.url, key, context],
        )
    )


def test_web_provider__other_origin__ready_every_type_and_error_codes(
    page: Page, web: WebServer, demo_key, shop
) -> None:
    status = _start(page, shop, web, demo_key, {"targetingKey": "e2e-of-web-1"})

    assert status == "READY"
    assert page.evaluate("location.origin") == shop != web.url
    assert page.evaluate("details('boolean', 'inbox-digest', true)")["errorCode"] is None
    assert page.evaluate("details('string', 'smart-compose', 'x')")["value"] in (
        "edge",
        "cloud",
        "lite",
        "off",
    )
    assert page.evaluate("details('number', 'reply-temperature', -1)")["value"] != -1
    assert isinstance(
        page.evaluate("details('object', 'predictive-typing-config', {})")["value"], dict
    )
    split = page.evaluate("details('string', 'lead-scoring-model', 'none')")
    assert split["value"] in ("gbm-v3", "tiny-transformer")
    assert (
        page.evaluate("details('string', 'no-such-flag', 'none')")["errorCode"] == "FLAG_NOT_FOUND"
    )
    assert (
        page.evaluate("details('boolean', 'smart-compose', false)")["errorCode"] == "TYPE_MISMATCH"
    )


def test_web_provider__no_targeting_key__split_flag_says_so(
    page: Page, web: WebServer, demo_key, shop
) -> None:
    status = _start(page, shop, web, demo_key, {})

    split = page.evaluate("details('string', 'lead-scoring-model', 'none')")

    assert status == "READY"
    assert split["value"] == "none"
    assert split["errorCode"] == "TARGETING_KEY_MISSING"


def test_web_provider__one_flag_changed__one_changed_flag_reported(
    page: Page, web: WebServer, demo_key, shop
) -> None:
    _start(page, shop, web, demo_key, {"targetingKey": "e2e-of-web-2"})
    before = page.evaluate("details('number', 'reply-temperature', -1)")["value"]

    manage(
        web.env,
        "shell",
        "-c",
        "from rollout.models import FlagState\n"
        "from rollout.services import flag_state_update\n"
        "state = FlagState.objects.get(flag__key='reply-temperature', environment__key='demo')\n"
        "flag_state_update(state=state, off_value=0.9)\n",
    )
    page.wait_for_function("window.changes.length > 0", timeout=15_000)

    assert page.evaluate("window.changes") == [["reply-temperature"]]
    assert before == 0.7
    assert page.evaluate("details('number', 'reply-temperature', -1)")["value"] == 0.9
