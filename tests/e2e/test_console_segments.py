"""The console's Segments page in headless Chromium against the live server (demo data):
charts, "Run now", accepting and renaming review segments through the UI, the keyboard,
and the page at desktop and tablet width."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import ARTIFACTS, STAFF_PASSWORD, ConsoleLog, WebServer, admin_login
from tests.support.processes import manage

pytestmark = pytest.mark.services

PAGE = "/admin/console/segments/"
REVIEW_KEYS = ("e2e-new-a", "e2e-new-b", "e2e-new-c")

# The demo's first segmentation flags nothing for review: add review segments of our own
# (copies of the largest one's centroid, identities outside the model, so that no client and
# no other test sees them) and the two accounts, through the server's own code.
SETUP = """
import json
from django.contrib.auth.models import Group, User
from django.db.models import Max
from segments.models import CapabilitySegment

for name, group in (("segments-rm", "release manager"), ("segments-viewer", "viewer")):
    user = User.objects.create_user(name, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=group)[0])
largest = CapabilitySegment.objects.order_by("-size").first()
identity = CapabilitySegment.objects.aggregate(m=Max("identity"))["m"]
for offset, key in enumerate(KEYS, start=1):
    CapabilitySegment.objects.create(
        identity=identity + offset, key=key, label=key, status="review", size=120,
        share=0.006, centroid=largest.centroid,
    )
print(json.dumps(list(CapabilitySegment.objects.values_list("key", flat=True))))
"""


@pytest.fixture(scope="module")
def segment_keys(web: WebServer) -> list[str]:
    """Every segment key after the setup (the demo's and the three review segments)."""
    code = f"PASSWORD = {STAFF_PASSWORD!r}\nKEYS = {list(REVIEW_KEYS)!r}\n{SETUP}"
    return list(json.loads(manage(web.env, "shell", "-c", code).strip().splitlines()[-1]))


def _login(page: Page, web: WebServer, username: str) -> None:
    admin_login(page, web, username, PAGE)


def test_segments_page__release_manager__charts_run_now_and_both_widths(
    page: Page, web, segment_keys
) -> None:
    _login(page, web, "segments-rm")

    for key in segment_keys:
        expect(page.locator(f"#segment-{key}")).to_be_visible()
    bars = page.locator("svg.seg-bars")
    assert bars.count() >= len(segment_keys)
    assert bars.first.get_attribute("role") == "img"
    assert bars.first.locator("title").first.text_content().startswith("Centroid of ")
    assert page.locator("svg.seg-bars rect.seg-bar").count() > len(segment_keys)
    assert page.locator("svg.seg-line").count() >= 1
    assert page.locator("svg.seg-line circle.seg-dot").count() >= 1
    # Reach per rung: the demo's ladder flags, counted by the demo's segmentation run.
    reach = page.locator("svg.seg-reach")
    assert reach.count() >= 1
    assert reach.first.get_attribute("role") == "img"
    assert "edge " in (reach.first.locator("title").first.text_content() or "")
    expect(page.locator(".seg-reach-text").first).to_contain_text(" % · ")
    expect(page.get_by_role("button", name="Run now")).to_be_visible()
    expect(page.locator("#runs-table")).to_contain_text("succeeded")
    expect(page.locator("#review-title")).to_contain_text("Flagged for review")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-segments-1280.png"), full_page=True)

    page.set_viewport_size({"width": 768, "height": 1000})
    page.reload()

    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    expect(page.get_by_role("button", name="Run now")).to_be_visible()
    box = page.locator("svg.seg-bars").first.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 768
    page.screenshot(path=str(ARTIFACTS / "console-segments-768.png"), full_page=True)


def test_review__accept_then_rename_through_the_ui(
    page: Page, web, segment_keys, console_log: ConsoleLog
) -> None:
    console_log.allow(r"status of 400")  # Chromium's line for the refused rename below
    _login(page, web, "segments-rm")

    # Accept: the first press asks for confirmation, the second does it.
    page.locator("#review-e2e-new-a").get_by_role("button", name="Accept").click()
    expect(page.locator("#confirm-title")).to_contain_text("Confirm: accept")
    page.fill("#seg-reason", "a real tablet tier")
    page.get_by_role("button", name="Confirm accept").click()
    page.wait_for_url(f"{web.url}{PAGE}")
    expect(page.locator(".messagelist")).to_contain_text("e2e-new-a")
    expect(page.locator("#review-e2e-new-a")).to_have_count(0)
    expect(page.locator("#segment-e2e-new-a .seg-status")).to_have_text("Active")

    # Rename: a new key and label; the card is then found under the new key.
    card = page.locator("#review-e2e-new-b")
    card.get_by_label("New key").fill("e2e-tablets")
    card.get_by_label("New label").fill("E2E tablets")
    card.get_by_role("button", name="Rename").click()
    expect(page.locator(".seg-confirm")).to_contain_text("Key e2e-new-b → e2e-tablets")
    page.get_by_role("button", name="Confirm rename").click()
    page.wait_for_url(f"{web.url}{PAGE}")
    expect(page.locator("#review-e2e-tablets")).to_be_visible()
    expect(page.locator("#segment-e2e-tablets .seg-label")).to_have_text("E2E tablets")
    expect(page.locator("#segment-e2e-new-b")).to_have_count(0)

    # Bad input: the page comes back with the field named.
    card = page.locator("#review-e2e-tablets")
    card.get_by_label("New key").fill("e2e-new-a")
    card.get_by_role("button", name="Rename").click()
    expect(page.locator("#seg-error")).to_contain_text("key")
    expect(page.locator("#seg-error")).to_contain_text("is taken by another segment")

    audit = manage(
        web.env,
        "shell",
        "-c",
        "from rollout.models import AuditEntry\n"
        "print(sorted(AuditEntry.objects.filter(action__startswith='segment.')"
        ".values_list('action', 'segment')))",
    )
    assert "('segment.accept', 'e2e-new-a')" in audit
    assert "('segment.rename', 'e2e-new-b')" in audit


def test_keyboard__tab_reaches_the_actions_and_enter_confirms(
    page: Page, web, segment_keys
) -> None:
    _login(page, web, "segments-rm")
    target = page.locator("#review-e2e-new-c").get_by_role("button", name="Accept")
    target_handle = target.element_handle()

    reached = False
    for _ in range(300):
        page.keyboard.press("Tab")
        if page.evaluate("(el) => document.activeElement === el", target_handle):
            reached = True
            break
    assert reached, "Tab never reached the Accept button of the review segment"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")  # the focus is visible

    page.keyboard.press("Enter")
    expect(page.locator("#confirm-title")).to_contain_text("e2e-new-c")
    assert page.evaluate("document.activeElement.id") == "seg-confirm-button"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{web.url}{PAGE}")
    expect(page.locator("#segment-e2e-new-c .seg-status")).to_have_text("Active")


def test_viewer__sees_the_charts_but_no_action_or_run_now(page: Page, web, segment_keys) -> None:
    _login(page, web, "segments-viewer")

    assert page.locator("svg.seg-bars").count() >= len(segment_keys)
    expect(page.get_by_role("button", name="Run now")).to_have_count(0)
    expect(page.locator(".seg-actions")).to_have_count(0)
    expect(page.locator(".console-role")).to_contain_text("viewer")
