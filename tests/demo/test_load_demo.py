"""load_demo: the demo data `make run` loads, idempotently and published."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from rollout.models import AuditEntry, Flag, SnapshotVersion

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_load_demo__run_twice__idempotent_and_published(django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = _run("load_demo")
    with django_capture_on_commit_callbacks(execute=True):
        second = _run("load_demo")

    assert "flag smart-compose" in first
    assert "3000 synthetic capability profiles" in first
    assert "segmentation model v1" in first
    assert "Demo data ready (0 new item(s))." in second
    assert Flag.objects.count() == 6
    snapshot = SnapshotVersion.objects.filter(environment__key="production").first()
    assert snapshot is not None
    assert "capabilityModel" in snapshot.document
    # lead-summary ramps segment by segment; the guardrails rolled one segment back.
    assert "lead-summary rollout in production after 72 h" in first
    rollout = next(
        f["ladder"]["rollout"] for f in snapshot.document["flags"] if f["key"] == "lead-summary"
    )
    states = {entry["state"] for entry in rollout["segments"].values()}
    assert {"rolled_back", "ramping", "pending"} <= states
    assert len({entry["percentage"] for entry in rollout["segments"].values()}) >= 3
    fired = AuditEntry.objects.get(action="rollout.rollback", actor_name="controller")
    assert fired.evidence["metric"] == "failures"
    assert fired.evidence["metrics"][0]["eValue"] >= fired.evidence["threshold"]
