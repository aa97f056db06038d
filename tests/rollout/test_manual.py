"""Manual control: the management API, the command line and the admin, each with a reason."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from rollout.models import AuditEntry, SegmentRollout
from tests.support.rollouts import rollout_row

pytestmark = pytest.mark.django_db

BASE = "/api/v1/rollouts/smart-compose/production"


def _post(client, path: str, body: object, publish=None):
    def call():
        return client.post(path, data=json.dumps(body), content_type="application/json")

    return publish(call) if publish else call()


def _state(segment: str) -> str:
    return rollout_row(segment).state


@pytest.mark.parametrize(
    ("action", "state"),
    [("rollback", "rolled_back"), ("pause", "paused"), ("advance", "ramping")],
)
def test_segment_action__staff_with_reason__applied_and_audited(
    plan, staff, publish, action, state
) -> None:
    response = _post(
        staff, f"{BASE}/segments/edge-ready/{action}", {"reason": "dashboards red"}, publish
    )

    assert response.status_code == 200, response.content
    assert response.json()["state"] == state
    assert _state("edge-ready") == state
    assert _state("cloud-only") == "ramping"
    entry = AuditEntry.objects.filter(action=f"rollout.{action}", segment="edge-ready").first()
    assert entry is not None
    assert (entry.actor_name, entry.reason) == ("rm", "dashboards red")


def test_segment_action__resume_after_pause(plan, staff, publish) -> None:
    _post(staff, f"{BASE}/segments/edge-ready/pause", {"reason": "look first"}, publish)

    response = _post(staff, f"{BASE}/segments/edge-ready/resume", {"reason": "fine"}, publish)

    assert response.json()["state"] == "ramping"


def test_kill__rolls_back_every_segment(plan, staff, publish) -> None:
    response = _post(staff, f"{BASE}/kill", {"reason": "incident 42"}, publish)

    assert response.status_code == 200
    assert len(response.json()) == 4
    assert set(SegmentRollout.objects.values_list("state", flat=True)) == {"rolled_back"}
    assert AuditEntry.objects.filter(action="rollout.rollback", reason="incident 42").count() == 4


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("segments/edge-ready/rollback", {}, 400, "reason"),
        ("segments/edge-ready/rollback", {"reason": "  "}, 400, "reason"),
        ("segments/edge-ready/rollback", {"reason": "x" * 2001}, 400, "reason"),
        ("segments/edge-ready/explode", {"reason": "x"}, 404, "action"),
        ("segments/no-such-segment/rollback", {"reason": "x"}, 404, "segment"),
        ("segments/edge-ready/resume", {"reason": "x"}, 409, "action"),
        ("kill", {}, 400, "reason"),
        ("kill", [], 400, "non_field_errors"),
    ],
)
def test_actions__bad_requests__4xx_naming_the_field(
    plan, staff, path, body, status, field
) -> None:
    response = _post(staff, f"{BASE}/{path}", body)

    assert response.status_code == status, response.content
    assert field in response.json()
    assert set(SegmentRollout.objects.values_list("state", flat=True)) == {"ramping"}


def test_actions__unknown_flag__404(plan, staff) -> None:
    response = _post(staff, "/api/v1/rollouts/nope/production/kill", {"reason": "x"})

    assert response.status_code == 404
    assert "flag" in response.json()


def test_actions__not_staff__refused(plan, client) -> None:
    User.objects.create_user("viewer", password="pw-for-tests-only")
    client.login(username="viewer", password="pw-for-tests-only")

    response = _post(client, f"{BASE}/kill", {"reason": "x"})

    assert response.status_code == 403
    assert set(SegmentRollout.objects.values_list("state", flat=True)) == {"ramping"}


def test_rollout_get__plan_and_segments(plan, staff) -> None:
    body = staff.get(BASE).json()

    assert body["stages"][0]["percentage"] == 1
    assert {s["segment"]: s["percentage"] for s in body["segments"]}["edge-ready"] == 1


def test_rollout_create__bad_stage__400_naming_field(edge_flag, staff) -> None:
    response = _post(staff, BASE, {"stages": [{"percentage": 50}, {"percentage": 10}]})

    assert response.status_code == 400
    assert "stages[1].percentage" in json.dumps(response.json())


def test_rollout_create__over_api__segments_ramping(edge_flag, staff, publish) -> None:
    response = _post(
        staff,
        BASE,
        {"stages": [{"percentage": 10}, {"percentage": 100}], "excludedSegments": ["save-data"]},
        publish,
    )

    assert response.status_code == 201, response.content
    assert {s["segment"] for s in response.json()["segments"]} == {
        "edge-ready",
        "cloud-only",
        "constrained-network",
    }


def test_rollback_command__one_segment(plan, publish, capsys) -> None:
    publish(
        lambda: call_command(
            "rollback",
            "smart-compose",
            "--environment",
            "production",
            "--segment",
            "cloud-only",
            "--reason",
            "p95 up",
        )
    )

    assert _state("cloud-only") == "rolled_back"
    assert _state("edge-ready") == "ramping"
    assert (
        "rolled back smart-compose in production for segment cloud-only" in capsys.readouterr().out
    )
    assert AuditEntry.objects.get(action="rollout.rollback").actor_name.startswith("cli:")


def test_rollback_command__without_segment__every_segment(plan, publish) -> None:
    publish(
        lambda: call_command(
            "rollback", "smart-compose", "--environment", "production", "--reason", "kill"
        )
    )

    assert set(SegmentRollout.objects.values_list("state", flat=True)) == {"rolled_back"}


def test_rollback_command__unknown_segment__clear_error(plan) -> None:
    with pytest.raises(CommandError, match="segment"):
        call_command(
            "rollback",
            "smart-compose",
            "--environment",
            "production",
            "--segment",
            "nope",
            "--reason",
            "x",
        )


def test_admin_action__asks_for_reason_then_rolls_back(plan, client, publish) -> None:
    User.objects.create_superuser("admin", "a@example.com", "pw-for-tests-only")
    client.login(username="admin", password="pw-for-tests-only")
    row = rollout_row("edge-ready")
    url = "/admin/rollout/segmentrollout/"

    asked = client.post(url, {"action": "rollback", "_selected_action": [row.pk]})
    assert asked.status_code == 200
    assert b"Reason (required" in asked.content
    assert _state("edge-ready") == "ramping"

    done = publish(
        lambda: client.post(
            url,
            {
                "action": "rollback",
                "_selected_action": [row.pk],
                "confirm": "yes",
                "reason": "from the admin",
            },
        )
    )

    assert done.status_code == 302
    assert _state("edge-ready") == "rolled_back"
    assert AuditEntry.objects.get(action="rollout.rollback").reason == "from the admin"


def test_simulate_rollout_command__json_last_line(capsys) -> None:
    call_command(
        "simulate_rollout", "--scenario", "latency10", "--runs", "5", "--seed", "4", "--json"
    )

    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (last["scenario"], last["runs"]) == ("latency10", 5)
    assert last["rollback_rate"] == 1.0
    assert len(last["rollback_rate_ci"]) == 2
    assert last["median_hours_to_rollback"] <= 8
    assert last["median_blast_radius"] > 0
