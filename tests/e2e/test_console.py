"""The rollout console in headless Chromium against the live server: overview, flag page,
actions with confirmation and reason, audit log and CSV, roles, keyboard, tablet width."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
import requests
from playwright.sync_api import Page

from tests.support.browser import ARTIFACTS, STAFF_PASSWORD, WebServer, admin_login
from tests.support.processes import manage
from tests.support.treated import treated_client


@pytest.fixture(scope="module")
def accounts(web: WebServer) -> dict[str, str]:
    """A release manager and a viewer (staff, in their groups), and the viewer's API token."""
    manage(
        web.env,
        "shell",
        "-c",
        "from django.contrib.auth.models import Group, User\n"
        "for name, group in (('console-rm', 'release manager'), ('console-viewer', 'viewer')):\n"
        f"    user = User.objects.create_user(name, password={STAFF_PASSWORD!r}, is_staff=True)\n"
        "    user.groups.add(Group.objects.get(name=group))\n",
    )
    token = manage(web.env, "create_token", "console-viewer").strip()
    web.secrets.append(token)
    return {"viewer_token": token}


def _login(page: Page, web: WebServer, username: str) -> None:
    admin_login(page, web, username, "/admin/console/")


def _evaluate(web: WebServer, context: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(
        f"{web.url}/api/v1/evaluate",
        json={"context": context, "flags": ["lead-summary"]},
        headers={"Authorization": f"Bearer {web.client_key}"},
        timeout=5,
    )
    return dict(response.json()["flags"]["lead-summary"])


def test_overview__matrix_states_in_words_and_filters(page: Page, web, accounts) -> None:
    _login(page, web, "console-rm")

    matrix = page.locator("table.matrix")
    assert matrix.is_visible()
    assert page.locator("th[scope=row] a", has_text="lead-summary").count() == 1
    cells = page.locator("td.cell.state-rolled_back")
    assert cells.count() >= 1  # the demo's automatic rollback
    assert "rolled back" in cells.first.inner_text()
    assert page.locator(".cell-verdict").count() >= 1  # latest guardrail verdicts

    page.select_option("select[name=state]", "rolled_back")
    page.click("form.console-filters button[type=submit]")
    page.wait_for_url("**state=rolled_back**")
    flags = page.locator("table.matrix th[scope=row] a").all_inner_texts()
    assert flags == ["lead-summary"]


def test_flag_page__roll_back_a_segment__cell_audit_and_api_follow(
    page: Page, web, accounts
) -> None:
    treated = treated_client(web.env, "lead-summary", "console-user")
    segment = treated["segment"]
    assert _evaluate(web, treated["context"])["variant"] == treated["variant"]
    _login(page, web, "console-rm")
    page.goto(f"{web.url}/admin/console/flags/lead-summary?environment=production")
    panel = page.locator(f"#segment-{segment}")
    assert page.locator("section.segment svg.chart").count() >= 4  # guardrail charts
    assert "Ladder" in page.inner_text("#ladder-h")

    # When the release manager picks "rollback", gives a reason and confirms
    panel.locator("input[name=action][value=rollback]").check()
    panel.locator("textarea[name=reason]").fill("support reports crashes")
    page.once("dialog", lambda dialog: dialog.accept())
    panel.locator("button[type=submit]").click()
    page.wait_for_load_state()
    clicked_at = time.monotonic()

    # Then the page, the overview cell, the audit log and the evaluate API all follow
    assert "rolled back" in page.locator(f"#segment-{segment} .segment-state").inner_text()
    while _evaluate(web, treated["context"])["variant"] != "lite":
        assert time.monotonic() - clicked_at < 1.5, "the API still serves the old rung"
        time.sleep(0.05)
    page.goto(f"{web.url}/admin/console/?environment=production")
    row = page.locator("tr", has=page.locator("th a", has_text="lead-summary"))
    cell = row.locator(f"td[data-segment='{segment}']")
    assert "rolled back" in cell.inner_text()
    page.goto(f"{web.url}/admin/console/audit/?flag=lead-summary&segment={segment}")
    first = page.locator("table.audit tbody tr").first
    assert "support reports crashes" in first.inner_text()
    assert "console-rm" in first.inner_text()


def test_flag_page__kill_switch_in_staging(page: Page, web, accounts) -> None:
    _login(page, web, "console-rm")
    page.goto(f"{web.url}/admin/console/flags/smart-compose?environment=staging")

    form = page.locator("form.kill-switch")
    form.locator("textarea[name=reason]").fill("staging incident drill")
    page.once("dialog", lambda dialog: dialog.accept())
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()

    assert "Kill switch: rolled back" in page.inner_text("ul.messagelist")
    states = page.locator("section.segment .segment-state").all_inner_texts()
    assert states
    assert all(s.startswith("rolled back") for s in states)


def _apply(page: Page, segment: str, action: str, reason: str) -> str:
    panel = page.locator(f"#segment-{segment}")
    panel.locator(f"input[name=action][value={action}]").check()
    panel.locator("textarea[name=reason]").fill(reason)
    page.once("dialog", lambda dialog: dialog.accept())
    panel.locator("button[type=submit]").click()
    page.wait_for_load_state()
    return page.locator(f"#segment-{segment} h2").inner_text()


def test_flag_page__pause_resume_advance_a_segment(page: Page, web, accounts) -> None:
    _login(page, web, "console-rm")
    page.goto(f"{web.url}/admin/console/flags/lead-summary?environment=production")
    ramping = page.locator("section.segment.state-ramping").first
    segment = ramping.get_attribute("data-segment")
    assert segment
    stage_before = ramping.locator(".stages li.current").inner_text()

    assert "Paused" in _apply(page, segment, "pause", "checking a support ticket")
    assert "Ramping" in _apply(page, segment, "resume", "ticket unrelated")
    heading = _apply(page, segment, "advance", "enough evidence by hand")

    assert "Ramping" in heading or "Complete" in heading
    current = page.locator(f"#segment-{segment} .stages li.current")
    assert current.count() == 0 or current.inner_text() != stage_before
    page.goto(f"{web.url}/admin/console/audit/?segment={segment}&actor=console-rm")
    actions = page.locator("table.audit tbody tr td:nth-child(3)").all_inner_texts()
    assert {"rollout.pause", "rollout.resume", "rollout.advance"} <= set(actions)


def test_flag_page__confirmation_declined__nothing_changes(page: Page, web, accounts) -> None:
    _login(page, web, "console-rm")
    page.goto(f"{web.url}/admin/console/flags/smart-compose?environment=production")
    panel = page.locator("section.segment").first
    before = panel.locator(".segment-state").inner_text()

    panel.locator("input[name=action][value=rollback]").check()
    panel.locator("textarea[name=reason]").fill("just looking")
    page.once("dialog", lambda dialog: dialog.dismiss())
    panel.locator("button[type=submit]").click()

    page.reload()
    assert page.locator("section.segment").first.locator(".segment-state").inner_text() == before


def test_viewer__sees_pages_cannot_act_on_page_or_api(
    page: Page, web, accounts, console_log
) -> None:
    console_log.allow("status of 403")  # the forged post below is refused, as it should be
    _login(page, web, "console-viewer")
    page.goto(f"{web.url}/admin/console/flags/lead-summary?environment=production")

    assert page.locator("section.segment").count() >= 1
    assert page.locator("form.kill-switch").count() == 0
    assert page.locator("textarea[name=reason]").count() == 0
    assert "viewer (read only)" in page.inner_text(".console-nav")
    # A forged form post is refused as well
    status = page.evaluate(
        """async () => {
          const cookie = document.cookie.split('; ').find(c => c.startsWith('csrftoken='));
          const token = cookie.split('=')[1];
          const body = new URLSearchParams({flag: 'lead-summary', environment: 'production',
            segment: 'save-data', action: 'rollback', reason: 'x', csrfmiddlewaretoken: token});
          const r = await fetch('/admin/console/actions', {method: 'POST', body});
          return r.status;
        }"""
    )
    assert status == 403
    api = requests.post(
        f"{web.url}/api/v1/rollouts/lead-summary/production/kill",
        json={"reason": "x"},
        headers={"Authorization": f"Token {accounts['viewer_token']}"},
        timeout=5,
    )
    assert api.status_code == 403


def test_audit_log__filter_and_csv_export(page: Page, web, accounts) -> None:
    _login(page, web, "console-rm")
    page.goto(f"{web.url}/admin/console/audit/")

    page.select_option("select[name=actor]", "controller")
    page.click("form.console-filters button[type=submit]")
    rows = page.locator("table.audit tbody tr")
    assert rows.count() >= 1
    assert page.locator("table.audit details").count() >= 1  # evidence of automatic decisions
    with page.expect_download() as download:
        page.click("text=Export CSV")
    text = download.value.path().read_text()
    exported = list(csv.reader(io.StringIO(text)))
    assert exported[0][:3] == ["at", "actor", "action"]
    assert {row[1] for row in exported[1:]} == {"controller"}


def test_keyboard__tab_reaches_actions_on_flag_page(page: Page, web, accounts) -> None:
    _login(page, web, "console-rm")
    page.goto(f"{web.url}/admin/console/flags/smart-compose?environment=production")

    reached = set()
    for _ in range(80):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement && document.activeElement.name || ''"))
        if {"action", "reason"} <= reached:
            break
    assert {"action", "reason", "environment"} <= reached


@pytest.mark.parametrize("width", [1280, 768])
def test_pages__fit_the_width(page: Page, web, accounts, width) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    _login(page, web, "console-rm")
    for name, path in (
        ("overview", "/admin/console/"),
        ("flag", "/admin/console/flags/lead-summary?environment=production"),
        ("audit", "/admin/console/audit/"),
    ):
        page.goto(f"{web.url}{path}")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"{name} scrolls sideways at {width} px"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"console-{name}-{width}.png"), full_page=True)


def test_model_health__from_the_flag_page_table_charts_and_csv(page: Page, web, accounts) -> None:
    # Given a viewer on smart-compose's page in staging, where v3 ramps in one segment
    _login(page, web, "console-viewer")
    page.goto(f"{web.url}/admin/console/flags/smart-compose?environment=staging")
    assert "Retraining requested" in page.inner_text("#retraining")

    # When they follow the model health link and ask for the last 30 days
    page.get_by_role("link", name="Model health, cost ledger and CSV →").click()
    page.select_option("select[name=days]", "30")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()

    # Then every (segment, rung, version) has its row, the ledger its numbers, the charts draw
    assert page.url.endswith("days=30")
    v3 = page.locator("table.health tbody tr[data-model='3.0.0']")
    assert v3.count() == 1
    assert v3.locator("td.acceptance").inner_text().endswith("%")
    assert "on-device inferences did not go to the cloud" in page.inner_text("#ledger-summary")
    assert page.locator("svg.chart").count() == 3
    page.set_viewport_size({"width": 820, "height": 1180})  # a tablet: the table scrolls
    page.screenshot(path=str(ARTIFACTS / "model-health.png"), full_page=True)

    # And the CSV is the table's
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = download.value.path().read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["model_version"] for r in rows} >= {"2.0.0", "3.0.0"}
    assert len(rows) == page.locator("table.health tbody tr").count()
