"""The console's overview, flag and audit pages, and roles on pages, admin and API."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from knox.models import AuthToken

from rollout.controller import rollout_tick
from rollout.models import AuditEntry, SegmentRollout
from rollout.roles import RELEASE_MANAGER, VIEWER, roles_ensure
from tests.support.rollouts import START, rollout_row

pytestmark = pytest.mark.django_db

FLAG_PAGE = "/admin/console/flags/smart-compose?environment=production"


def _user(name: str, group: str | None, **extra) -> User:
    roles_ensure()
    user = User.objects.create_user(name, password="pw-for-tests-only", is_staff=True, **extra)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def manager(client):
    client.force_login(_user("rm", RELEASE_MANAGER))
    return client


@pytest.fixture
def viewer(client):
    client.force_login(_user("vi", VIEWER))
    return client


def _action(client, segment: str, action: str, reason: str = "dashboards red", publish=None):
    data = {
        "flag": "smart-compose",
        "environment": "production",
        "segment": segment,
        "action": action,
        "reason": reason,
    }

    def post():
        return client.post("/admin/console/actions", data)

    return publish(post) if publish else post()


def test_overview__matrix_of_flags_by_segment_with_state_words(plan, manager) -> None:
    body = manager.get("/admin/console/").content.decode()

    assert "smart-compose" in body
    for segment in ("edge-ready", "cloud-only", "constrained-network", "save-data"):
        assert f'data-segment="{segment}"' in body
    assert "edge · 1 %" in body
    assert "Ramping, stage 1 of 5" in body  # the state in words, not only a colour


def test_overview__state_filter_keeps_matching_flags(plan, manager, publish) -> None:
    assert "smart-compose" not in manager.get("/admin/console/?state=rolled_back").content.decode()
    _action(manager, "edge-ready", "rollback", publish=publish)

    body = manager.get("/admin/console/?state=rolled_back").content.decode()

    assert "smart-compose" in body
    assert "rolled back" in body


def test_overview__partial_refresh_returns_the_matrix_only(plan, manager) -> None:
    body = manager.get("/admin/console/?partial=1").content.decode()

    assert body.lstrip().startswith("<div") or "<table" in body
    assert "<html" not in body


def test_overview__queries_do_not_grow_with_flags(plan, manager, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        assert manager.get("/admin/console/").status_code == 200


def test_pages__anonymous_or_not_staff__sent_to_login(client) -> None:
    User.objects.create_user("someone", password="pw-for-tests-only")
    client.login(username="someone", password="pw-for-tests-only")

    for url in ("/admin/console/", FLAG_PAGE, "/admin/console/audit/"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


def test_flag_page__ladder_segments_charts_and_history(plan, feed, manager, publish) -> None:
    for hour in range(3):
        feed("edge-ready", hour, clients=(60, 3000), latency=(0.06, 0.05), seed=9)
    publish(lambda: rollout_tick(START + timedelta(hours=2)))

    body = manager.get(FLAG_PAGE).content.decode()

    assert "memoryGb ≥ 4" in body  # the ladder's requirements
    assert 'id="segment-edge-ready"' in body
    assert "<svg" in body
    assert "always-valid interval" in body
    assert "Kill switch" in body
    assert "rollout started" in body  # the flag's audit history


def test_flag_page__charts_draw_the_interval_the_controller_decided_on(
    edge_flag, feed, manager, publish
) -> None:
    from rollout.audit import Actor
    from rollout.rollouts import rollout_plan_create

    # τ omitted (the plan's default, relative to the control mean) and a margin: the two
    # things the page once read from the raw JSON differently from the controller.
    publish(
        lambda: rollout_plan_create(
            state=edge_flag,
            actor=Actor("test"),
            now=START,
            guardrails=[{"metric": "failures"}, {"metric": "latency", "margin": 0.1}],
        )
    )
    for hour in range(3):
        feed("edge-ready", hour, clients=(400, 3000), latency=(0.06, 0.05), seed=4)
    publish(lambda: rollout_tick(START + timedelta(hours=3)))

    response = manager.get(FLAG_PAGE)

    [view] = [v for v in response.context["segments"] if v.row.segment_key == "edge-ready"]
    [drawn] = [chart.last for chart in view.charts if chart.metric == "latency"]
    [decided] = [m for m in view.row.last_verdict["metrics"] if m["metric"] == "latency"]
    assert decided["nTreatment"] == drawn["n_treatment"] == 1200
    assert drawn["estimate"] == pytest.approx(decided["estimate"], abs=1e-6)
    assert list(drawn["interval"]) == pytest.approx(decided["interval"], abs=1e-6)


def test_flag_page__viewer_sees_no_controls(plan, viewer) -> None:
    body = viewer.get(FLAG_PAGE).content.decode()

    assert 'id="segment-edge-ready"' in body
    assert "Kill switch" not in body
    assert 'name="reason"' not in body


def test_action__manager_with_reason__applied_audited_redirected(plan, manager, publish) -> None:
    response = _action(manager, "cloud-only", "pause", publish=publish)

    assert response.status_code == 302
    assert rollout_row("cloud-only").state == "paused"
    entry = AuditEntry.objects.get(action="rollout.pause")
    assert (entry.actor_name, entry.reason, entry.segment) == ("rm", "dashboards red", "cloud-only")


def test_action__kill_switch_rolls_back_every_segment(plan, manager, publish) -> None:
    response = _action(manager, "", "kill", reason="incident", publish=publish)

    assert response.status_code == 302
    assert set(SegmentRollout.objects.values_list("state", flat=True)) == {"rolled_back"}


@pytest.mark.parametrize(
    ("segment", "action", "reason", "status", "words"),
    [
        ("edge-ready", "rollback", "", 400, "reason: required"),
        ("edge-ready", "resume", "x", 409, "only a paused, held or rolled-back"),
        ("nope", "rollback", "x", 404, "segment"),
        ("edge-ready", "explode", "x", 404, "action"),
    ],
)
def test_action__bad_request__4xx_page_names_the_problem(
    plan, manager, segment, action, reason, status, words
) -> None:
    response = _action(manager, segment, action, reason=reason)

    assert response.status_code == status
    assert words in response.content.decode()
    assert set(SegmentRollout.objects.values_list("state", flat=True)) == {"ramping"}


def test_action__viewer__403_nothing_changes(plan, viewer) -> None:
    response = _action(viewer, "edge-ready", "rollback")

    assert response.status_code == 403
    assert rollout_row("edge-ready").state == "ramping"
    assert not AuditEntry.objects.filter(action="rollout.rollback").exists()


def test_audit_page__filters_and_shows_before_after(plan, manager, publish) -> None:
    _action(manager, "cloud-only", "rollback", reason="p95 up", publish=publish)

    body = manager.get("/admin/console/audit/?segment=cloud-only&action=rollout.rollback")
    text = body.content.decode()

    assert "p95 up" in text
    assert "ramping → rolled_back" in text
    assert "1 entry" in text


def test_audit_page__bad_date__400_naming_it(manager) -> None:
    response = manager.get("/admin/console/audit/?since=yesterday")

    assert response.status_code == 400
    assert "since: not a date" in response.content.decode()


def test_audit_csv__every_matching_entry(plan, manager) -> None:
    response = manager.get("/admin/console/audit.csv?action=rollout.advance")

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["at", "actor", "action"]
    assert len(rows) == 1 + 4
    assert {row[5] for row in rows[1:]} == {
        "edge-ready",
        "cloud-only",
        "constrained-network",
        "save-data",
    }
    assert response["Content-Disposition"].startswith("attachment")


def test_roles__groups_and_permissions() -> None:
    roles_ensure()
    viewer_perms = set(
        Group.objects.get(name=VIEWER).permissions.values_list("codename", flat=True)
    )
    manager_perms = set(
        Group.objects.get(name=RELEASE_MANAGER).permissions.values_list("codename", flat=True)
    )

    assert {"view_segmentrollout", "view_auditentry", "view_flag"} <= viewer_perms
    assert not {p for p in viewer_perms if not p.startswith("view_")}
    assert {"change_segmentrollout", "change_rolloutplan", "change_flag"} <= manager_perms
    assert not {"add_environment", "change_apikey", "change_auditentry"} & manager_perms


@pytest.mark.parametrize(("group", "status"), [(VIEWER, 403), (RELEASE_MANAGER, 200)])
def test_api__only_release_managers_act(plan, client, group, status) -> None:
    _, token = AuthToken.objects.create(user=_user("api-user", group))
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"}

    looked = client.get("/api/v1/rollouts/smart-compose/production", **headers)
    acted = client.post(
        "/api/v1/rollouts/smart-compose/production/segments/edge-ready/rollback",
        data={"reason": "x"},
        content_type="application/json",
        **headers,
    )

    assert looked.status_code == 200
    assert acted.status_code == status
    expected = "rolled_back" if status == 200 else "ramping"
    assert rollout_row("edge-ready").state == expected


def test_admin__viewer_has_no_rollout_actions(plan, viewer) -> None:
    page = viewer.get("/admin/rollout/segmentrollout/")
    row = rollout_row("edge-ready")

    posted = viewer.post(
        "/admin/rollout/segmentrollout/",
        {"action": "rollback", "_selected_action": [row.pk], "confirm": "yes", "reason": "x"},
    )

    assert page.status_code == 200
    assert b'value="rollback"' not in page.content
    assert posted.status_code in (200, 302, 403)
    assert SegmentRollout.objects.get(pk=row.pk).state == "ramping"
