"""The controller over real aggregates: advance, hold, roll back, idempotent ticks, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from rollout.audit import Actor
from rollout.controller import rollout_tick
from rollout.models import AuditEntry, SegmentRollout, SnapshotVersion
from rollout.segment_review import ReviewRequest, segment_review
from rollout.selectors import segment_stage_window, with_segment_keys
from tests.support.metrics import scrape, total
from tests.support.rollouts import START, rollout_row

pytestmark = pytest.mark.django_db


def _latest_version() -> int:
    return SnapshotVersion.objects.order_by("-version").values_list("version", flat=True)[0]


def _row(segment: str = "edge-ready") -> SegmentRollout:
    return rollout_row(segment)


def test_plan_create__every_segment_ramping_at_first_stage(plan) -> None:
    rows = {row.segment_key: row for row in with_segment_keys(plan.segments.all())}

    assert set(rows) == {"edge-ready", "cloud-only", "constrained-network", "save-data"}
    assert {(r.state, r.stage, r.percentage) for r in rows.values()} == {("ramping", 0, 1)}
    assert AuditEntry.objects.filter(action="rollout.advance").count() == 4
    assert AuditEntry.objects.filter(action="rollout.plan").count() == 1


def test_tick__healthy_stage_after_dwell__advances_and_audits(plan, feed, publish) -> None:
    for hour in range(3):
        feed("edge-ready", hour, clients=(12, 1000), seed=1)
    version = _latest_version()
    before = scrape()

    report = publish(lambda: rollout_tick(START + timedelta(hours=3)))

    row = _row()
    assert (row.state, row.stage, row.percentage) == ("ramping", 1, 5)
    assert row.stage_started_at == START + timedelta(hours=3)
    entry = AuditEntry.objects.filter(action="rollout.advance", segment="edge-ready").first()
    assert entry is not None
    assert entry.actor_name == "controller"
    assert (entry.before["stage"], entry.after["stage"]) == (0, 1)
    assert entry.evidence["treatmentClients"] == 36
    assert "no guardrail fired" in entry.reason
    assert _latest_version() > version  # clients are served the new percentage
    assert report.outcomes["advance"] == 1
    decisions = "edgeflags_controller_decisions_total"
    after = scrape()
    for action, n in report.outcomes.items():
        assert total(after, decisions, action=action) - total(before, decisions, action=action) == n


def test_tick__same_instant_twice__second_changes_nothing(plan, feed, publish) -> None:
    for hour in range(3):
        feed("edge-ready", hour, clients=(12, 1000), seed=2)
    at = START + timedelta(hours=3)
    publish(lambda: rollout_tick(at))
    state = list(SegmentRollout.objects.order_by("pk").values())
    entries = AuditEntry.objects.count()
    version = _latest_version()

    report = publish(lambda: rollout_tick(at))

    assert list(SegmentRollout.objects.order_by("pk").values()) == state
    assert AuditEntry.objects.count() == entries
    assert _latest_version() == version
    assert not report.transitions


def test_tick__strong_latency_regression__rolls_back_that_segment_only(plan, feed, publish) -> None:
    for hour in range(3):
        feed("edge-ready", hour, clients=(31, 3069), latency=(0.30, 0.05), seed=3)
        feed("cloud-only", hour, clients=(31, 3069), seed=3)

    publish(lambda: rollout_tick(START + timedelta(hours=1, minutes=45)))

    assert _row("edge-ready").state == "rolled_back"
    assert _row("cloud-only").state == "ramping"
    entry = AuditEntry.objects.get(action="rollout.rollback", segment="edge-ready")
    assert entry.actor_name == "controller"
    fired = {m["metric"]: m for m in entry.evidence["metrics"]}["latency"]
    assert fired["eValue"] >= entry.evidence["threshold"]
    assert min(fired["nTreatment"], fired["nControl"]) >= 50
    low, high = fired["interval"]
    assert low < fired["estimate"] < high
    assert entry.reason.startswith("guardrail fired: latency")


def test_tick__aa_stream__never_rolls_back(plan, feed, publish) -> None:
    for hour in range(20):
        feed("edge-ready", hour, clients=(10, 990), failures=(0, 10), seed=4)
    for minute in range(0, 20 * 60, 30):
        publish(lambda m=minute: rollout_tick(START + timedelta(minutes=m)))

    assert _row().state != "rolled_back"
    assert not AuditEntry.objects.filter(action="rollout.rollback").exists()


def test_tick__no_data_for_a_day__held_then_resumed_when_data_returns(plan, feed, publish) -> None:
    publish(lambda: rollout_tick(START + timedelta(hours=25)))

    row = _row("cloud-only")
    assert (row.state, row.hold_reason) == ("held", "no_data")

    feed("cloud-only", 25, clients=(10, 990), seed=5)
    publish(lambda: rollout_tick(START + timedelta(hours=25, minutes=40)))

    assert _row("cloud-only").state == "ramping"
    actions = list(
        AuditEntry.objects.filter(segment="cloud-only")
        .order_by("at", "pk")
        .values_list("action", flat=True)
    )
    assert actions == ["rollout.advance", "rollout.hold", "rollout.resume"]


def test_rollout_tick_command__now_option(plan, feed, publish, capsys) -> None:
    for hour in range(3):
        feed("edge-ready", hour, clients=(12, 1000), seed=6)

    publish(lambda: call_command("rollout_tick", "--now", "2026-11-02T11:00:00"))

    out = capsys.readouterr().out
    assert "edge-ready: advance" in out
    assert "4 segment(s) checked" in out
    assert _row().stage == 1


def test_tick__segment_renamed_mid_stage__decides_on_the_same_evidence(plan, feed, publish) -> None:
    # Two identical fleets: one segment keeps its key, the other is renamed in the middle
    # of its ramping stage, after most of the stage's evidence is in.
    for hour in range(3):
        feed("edge-ready", hour, clients=(31, 3069), latency=(0.30, 0.05), seed=3)
        feed("cloud-only", hour, clients=(31, 3069), latency=(0.30, 0.05), seed=3)
    at = START + timedelta(hours=1, minutes=45)
    window_before = segment_stage_window(_row("cloud-only"), at)
    staff = User.objects.create_superuser("rm", "rm@example.com", "pw-for-tests-only")
    publish(
        lambda: segment_review(
            actor=Actor.of(staff),
            request=ReviewRequest(action="rename", segment="cloud-only", key="cloud-first"),
        )
    )

    renamed = _row("cloud-first")
    window_after = segment_stage_window(renamed, at)
    assert window_before.treatment_clients > 0
    assert (window_after.treatment_clients, window_after.control_clients) == (
        window_before.treatment_clients,
        window_before.control_clients,
    )
    assert window_after.means == window_before.means
    publish(lambda: rollout_tick(at))

    # the renamed segment is decided on the same evidence as its unrenamed twin
    assert (_row("cloud-first").state, _row("edge-ready").state) == ("rolled_back",) * 2
    twin = AuditEntry.objects.get(action="rollout.rollback", segment="edge-ready")
    entry = AuditEntry.objects.get(action="rollout.rollback", segment="cloud-first")
    assert entry.evidence == twin.evidence
    assert entry.segment_identity == renamed.segment_identity
    # and its history, under both keys, is the segment's own
    history = AuditEntry.objects.filter(segment_identity=renamed.segment_identity)
    assert {"cloud-only", "cloud-first"} <= set(history.values_list("segment", flat=True))
