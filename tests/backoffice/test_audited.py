"""Every path that changes state writes an audit entry naming who, what, before and after:
admin forms (add, change with inlines, delete), admin actions, the management API, key
creation and revocation, schedules (edit, enable, disable, run), segment review (accept,
rename, merge), Run now, and the commands. And, said plainly: a viewer cannot revoke a key,
disable a schedule, run a task or accept a segment."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin import helpers
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from rollout.models import ApiKey, AuditEntry, FlagState, Segment, SegmentRollout
from segments.models import CapabilitySegment
from tests.support.rollouts import rollout_row, rows_of

pytestmark = pytest.mark.django_db


def _changelist(model: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _act(client: Client, model: Any, action: str, *pks: Any, **extra: str) -> Any:
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: list(pks), "index": 0, **extra}
    return client.post(_changelist(model), data)


def _form_data(page: Any) -> dict[str, Any]:
    """What the browser would post back from an admin change page, unchanged."""
    data: dict[str, Any] = {}
    forms = [page.context["adminform"].form]
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        forms.extend(formset.forms)
        for field in formset.management_form:
            data[field.html_name] = field.value()
    for form in forms:
        for field in form:
            value = field.value()
            if value is None or value is False:
                continue
            data[field.html_name] = "on" if value is True else value
    return data


def _latest(action: str) -> AuditEntry:
    return AuditEntry.objects.filter(action=action).latest("pk")


def test_admin_form__flag_state_change__audited_with_before_and_after(world, manager, publish):
    state = FlagState.objects.get(flag__key="smart-compose")
    url = reverse("admin:rollout_flagstate_change", args=[state.pk])
    data = _form_data(manager.get(url))
    data.pop("enabled")  # turn it off

    response = publish(lambda: manager.post(url, data))

    assert response.status_code == 302, response.context and response.context.get("errors")
    entry = _latest("flagstate.change")
    assert (entry.actor_name, entry.flag, entry.environment) == (
        "rm",
        "smart-compose",
        "production",
    )
    assert entry.before["enabled"] is True
    assert entry.after["enabled"] is False


def test_admin_form__rule_segment_add_and_delete__audited(world, manager, superuser, publish):
    added = publish(
        lambda: manager.post(
            reverse("admin:rollout_segment_add"),
            {"key": "eu", "description": "Europe", "constraints": "[]"},
        )
    )
    segment = Segment.objects.get(key="eu")
    deleted = publish(
        lambda: superuser.post(
            reverse("admin:rollout_segment_delete", args=[segment.pk]), {"post": "yes"}
        )
    )

    assert (added.status_code, deleted.status_code) == (302, 302)
    assert _latest("segment.add").after["key"] == "eu"
    assert _latest("segment.delete").before["key"] == "eu"
    assert _latest("segment.delete").actor_name == "root-user"
    assert not Segment.objects.filter(key="eu").exists()


def test_admin_inline__rung_edited_in_the_flag_form__audited(world, manager, publish):
    flag = FlagState.objects.get(flag__key="smart-compose").flag
    url = reverse("admin:rollout_flag_change", args=[flag.pk])
    data = _form_data(manager.get(url))
    prefix = next(k for k in data if k.endswith("-0-key") and data[k] == "edge")[: -len("key")]
    data[prefix + "ui_state"] = json.dumps({"component": "SmartComposeV2"})

    response = publish(lambda: manager.post(url, data))

    assert response.status_code == 302
    entries = list(AuditEntry.objects.filter(action="rung.change"))
    assert [(e.flag, e.before, e.after["ui_state"]) for e in entries] == [
        (
            "smart-compose",
            {
                "object": entries[0].before["object"],
                "id": entries[0].after["id"],
                "ui_state": {"component": "SmartCompose"},
            },
            {"component": "SmartComposeV2"},
        )
    ]


def test_api_key__created_in_admin_and_revoked_by_action__audited_without_secrets(
    world, superuser, publish
):
    added = publish(
        lambda: superuser.post(
            reverse("admin:rollout_apikey_add"),
            {"environment": world["key"].environment_id, "name": "ios app", "scope": "client"},
        )
    )
    key = ApiKey.objects.get(name="ios app")
    revoked = publish(lambda: _act(superuser, ApiKey, "revoke", key.pk))

    assert (added.status_code, revoked.status_code) == (302, 302)
    created, gone = _latest("apikey.create"), _latest("apikey.revoke")
    assert created.after["prefix"] == key.prefix
    assert gone.before["revokedAt"] is None
    assert gone.after["revokedAt"]
    assert "key_hash" not in json.dumps([created.after, gone.before, gone.after])
    key.refresh_from_db()
    assert not key.is_active


def test_management_api__patch_flag_state__audited_with_reason(world, manager, publish):
    response = publish(
        lambda: manager.patch(
            "/api/v1/flags/smart-compose/environments/production",
            {"enabled": False, "reason": "support load"},
            content_type="application/json",
        )
    )

    assert response.status_code == 200, response.content
    entry = _latest("flagstate.change")
    assert (entry.before["enabled"], entry.after["enabled"]) == (True, False)
    assert (entry.actor_name, entry.reason) == ("rm", "support load")


def test_schedules__edit_enable_disable_toggle_run__each_audited(
    world, manager, publish, django_capture_on_commit_callbacks
):
    task: PeriodicTask = world["task"]
    url = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
    data = _form_data(manager.get(url))
    data["description"] = "every minute, edited"

    edited = publish(lambda: manager.post(url, data))
    for action in ("disable_tasks", "enable_tasks", "toggle_tasks"):
        publish(lambda a=action: _act(manager, PeriodicTask, a, task.pk))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        ran = _act(manager, PeriodicTask, "run_tasks", task.pk)

    assert edited.status_code == 302
    assert _latest("periodictask.change").after["description"] == "every minute, edited"
    actions = list(
        AuditEntry.objects.filter(action__startswith="schedule.")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["schedule.disable", "schedule.enable", "schedule.disable", "schedule.run"]
    assert ran.status_code == 302
    assert len(queued) == 1  # the task is sent once the audit entry commits
    assert _latest("schedule.run").after == {
        "schedule": "rollout controller",
        "task": "rollout.tasks.rollout_tick",
    }


def test_run_now__release_manager__queued_and_audited(
    world, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = manager.post(reverse("admin:segments_segmentationrun_run_now"))

    assert response.status_code == 302
    assert len(queued) == 1
    assert _latest("segmentation.run").actor_name == "rm"


def test_segment_review__accept_rename_merge_in_admin_and_console__audited(world, manager, publish):
    accepted = publish(lambda: _act(manager, CapabilitySegment, "accept", world["review"].pk))

    def confirmed(**data: str) -> Any:
        return manager.post(
            reverse("console-segment-action"), {**data, "confirmed": "yes", "reason": "tidy"}
        )

    renamed = publish(lambda: confirmed(action="rename", segment="cloud-only", key="cloud-first"))
    merged = publish(lambda: confirmed(action="merge", segment="fresh-cluster", into="edge-ready"))

    assert [r.status_code for r in (accepted, renamed, merged)] == [302, 303, 303]
    assert _latest("segment.accept").before["status"] == "review"
    rename = _latest("segment.rename")
    assert (rename.before["key"], rename.after["key"]) == ("cloud-only", "cloud-first")
    assert rows_of("cloud-first").exists()
    assert _latest("segment.merge").after["mergedInto"] == "edge-ready"


def test_learned_segment__key_in_the_plain_admin_form__read_only(world, manager, publish):
    segment = CapabilitySegment.objects.get(key="edge-ready")
    url = reverse("admin:segments_capabilitysegment_change", args=[segment.pk])

    page = manager.get(url)
    publish(lambda: manager.post(url, {"key": "renamed-behind-rollouts", "label": "x"}))

    assert "key" not in page.context["adminform"].form.fields
    segment.refresh_from_db()
    assert segment.key == "edge-ready"


def test_commands__create_api_key_rollback_import__audited_as_the_os_user(
    world, publish, tmp_path: Path
):
    out = StringIO()
    publish(
        lambda: call_command(
            "create_api_key",
            "--environment",
            "production",
            "--scope",
            "server",
            stdout=out,
            stderr=StringIO(),
        )
    )
    publish(
        lambda: call_command(
            "rollback",
            "smart-compose",
            "--environment",
            "production",
            "--reason",
            "p95",
            stdout=StringIO(),
        )
    )
    export = tmp_path / "export.json"
    export.write_text(json.dumps({"features": [{"name": "checkout", "enabled": True}]}))
    publish(
        lambda: call_command(
            "import_unleash", str(export), "--environment", "staging", stdout=StringIO()
        )
    )

    for action in ("apikey.create", "rollout.rollback", "environment.add", "unleash.import"):
        assert _latest(action).actor_name.startswith("cli:"), action
    assert _latest("unleash.import").after["flagsCreated"] == ["checkout"]
    assert out.getvalue().strip() not in json.dumps(_latest("apikey.create").after)


@pytest.mark.parametrize("who", ["viewer", "groupless"])
def test_viewer__cannot_revoke_disable_run_or_accept(
    who, world, request, django_capture_on_commit_callbacks
):
    client: Client = request.getfixturevalue(who)
    key, task, review = world["key"], world["task"], world["review"]

    with django_capture_on_commit_callbacks(execute=False) as queued:
        _act(client, ApiKey, "revoke", key.pk)
        _act(client, PeriodicTask, "disable_tasks", task.pk)
        _act(client, PeriodicTask, "run_tasks", task.pk)
        _act(client, CapabilitySegment, "accept", review.pk)
        run_now = client.post(reverse("admin:segments_segmentationrun_run_now"))
        console = client.post(
            reverse("console-segment-action"),
            {"action": "accept", "segment": review.key, "confirmed": "yes"},
        )
        api = client.patch(
            "/api/v1/flags/smart-compose/environments/production",
            {"enabled": False},
            content_type="application/json",
        )

    key.refresh_from_db()
    task.refresh_from_db()
    review.refresh_from_db()
    assert key.is_active
    assert task.enabled
    assert review.status == CapabilitySegment.Status.REVIEW
    assert (run_now.status_code, console.status_code, api.status_code) == (403, 403, 403)
    assert FlagState.objects.get(flag__key="smart-compose").enabled
    assert queued == []
    assert not AuditEntry.objects.filter(actor_name__in=["vi", "nogroup"]).exists()


def test_run_segmentation_command__audited_before_it_runs(world) -> None:
    from django.core.management import CommandError

    # The world's run is still "running", so this one is refused: after its audit entry.
    with pytest.raises(CommandError, match="still running"):
        call_command("run_segmentation", stdout=StringIO())

    assert _latest("segmentation.run").actor_name.startswith("cli:")


def test_user_admin__put_in_the_release_manager_group__audited(world, superuser) -> None:
    from django.contrib.auth.models import Group, User

    alice = User.objects.create_user("alice", is_staff=True)
    managers = Group.objects.get(name="release manager")
    url = reverse("admin:auth_user_change", args=[alice.pk])

    response = superuser.post(
        url,
        {
            "username": "alice",
            "is_active": "on",
            "is_staff": "on",
            "groups": [managers.pk],
            "date_joined_0": "2026-12-01",
            "date_joined_1": "09:00:00",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = _latest("user.relations")
    assert (entry.before["groups"], entry.after["groups"]) == ([], [managers.pk])
    assert entry.actor_name == "root-user"
    assert "password" not in json.dumps([entry.before, entry.after])


def test_reasons__nul_character__refused_naming_the_field_not_a_500(world, manager) -> None:
    row = rollout_row("edge-ready")

    console = manager.post(
        reverse("console-action"),
        {
            "flag": "smart-compose",
            "environment": "production",
            "segment": "edge-ready",
            "action": "pause",
            "reason": "a\x00b",
        },
    )
    review = manager.post(
        reverse("console-segment-action"),
        {"action": "accept", "segment": "fresh-cluster", "reason": "a\x00b", "confirmed": "yes"},
    )
    admin_action = _act(manager, SegmentRollout, "pause", row.pk, confirm="yes", reason="a\x00b")
    api = manager.patch(
        "/api/v1/flags/smart-compose/environments/production",
        {"enabled": False, "reason": "a\x00b"},
        content_type="application/json",
    )

    assert (console.status_code, review.status_code, api.status_code) == (400, 400, 400)
    assert admin_action.status_code == 302
    row.refresh_from_db()
    assert row.state == "ramping"
    assert not AuditEntry.objects.filter(actor_name="rm").exists()
