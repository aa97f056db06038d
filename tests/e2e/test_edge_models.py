"""On-device models in real headless Chromium: edgeflags.js downloads the served version,
checks its SHA-256, reports the download and the user's verdicts on suggestions, and from
then on tells the server which version it holds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.e2e.test_demo import _rung_on

pytestmark = pytest.mark.services

ARTIFACT = Path(__file__).resolve().parents[2] / "demo/static/edgeflags/models/tiny-reply-2.0.0.bin"


def test_model__downloaded_checked_reported_and_held(page: Page, web) -> None:
    # Given a high-end client served the on-device rung with model tiny-reply 2.0.0
    assert _rung_on(page, f"{web.url}/demo/?emulate=high-end") == "edge"
    served = page.evaluate("Edgeflags.model('smart-compose')")
    assert (served["version"], served["update"]) == ("2.0.0", "full")
    assert served["sha256"] == hashlib.sha256(ARTIFACT.read_bytes()).hexdigest()

    # When the page fetches it, and the user accepts one suggestion and dismisses another
    fetched = page.evaluate(
        "Edgeflags.fetchModel('smart-compose').then(r => "
        "({version: r.version, delivery: r.delivery, bytes: r.data.byteLength}))"
    )
    page.evaluate("Edgeflags.suggestion('smart-compose', true)")
    page.evaluate("Edgeflags.suggestion('smart-compose', false)")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/events")) as answer:
        page.evaluate("Edgeflags.flush()")

    # Then the artifact arrived whole, and the server took the download and both verdicts
    assert fetched == {"version": "2.0.0", "delivery": "full", "bytes": ARTIFACT.stat().st_size}
    assert answer.value.status == 202
    events = answer.value.request.post_data_json["events"]
    update = next(e for e in events if e["type"] == "model_update")
    assert (update["to"], update["delivery"], update["ok"]) == ("2.0.0", "full", True)
    assert update["bytes"] == ARTIFACT.stat().st_size
    assert [e["accepted"] for e in events if e["type"] == "suggestion"] == [True, False]

    # And the next evaluation says it holds the version: nothing left to download
    page.evaluate("Edgeflags.refresh()")
    assert page.evaluate("Edgeflags.model('smart-compose').update") == "none"
    again = page.evaluate("Edgeflags.fetchModel('smart-compose').then(r => r.delivery)")
    assert again == "none"  # from the Cache API, not the network
