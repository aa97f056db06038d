"""No string or nesting a person or a client types reaches a row that cannot be published.

Runs on PostgreSQL (the env of the suite): NUL is refused by its text and jsonb types, which
SQLite would take.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.forms import modelform_factory

from interop.unleash import unleash_import
from ops.json_input import JsonInputError
from rollout.models import Flag, FlagState, RolloutPlan, Rung, TargetingRule
from rollout.services import flag_state_update, rule_create

pytestmark = pytest.mark.django_db

STATE_URL = "/api/v1/flags/smart-compose/environments/production"
ROLLOUT_URL = "/api/v1/rollouts/smart-compose/production"


def _deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


# Request bodies as a client would send them (JSON text, escapes and all).
BAD_VALUES = {
    "surrogate": '"\\ud800"',
    "nul": '"a\\u0000b"',
    "control": '"a\\u001bb"',
    "deep": "[" * 5000 + "]" * 5000,
}


@pytest.mark.parametrize("bad", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_flag_state_patch__bad_off_value__400_naming_it_nothing_committed(
    edge_flag, staff, bad
) -> None:
    response = staff.patch(
        STATE_URL,
        data='{"enabled": false, "offValue": ' + bad + "}",
        content_type="application/json",
    )

    assert response.status_code == 400, response.content
    field = next(iter(response.json()))
    assert field.startswith("offValue"), response.json()
    state = FlagState.objects.get(pk=edge_flag.pk)
    assert (state.enabled, state.off_value) == (True, "off")


@pytest.mark.parametrize(
    ("stages", "field"),
    [
        ('[{"percentage": 1, "name": "\\ud800"}, {"percentage": 100}]', "stages[0].name"),
        ('[{"percentage": 1}, {"percentage": 100, "note": "\\u0000"}]', "stages[1].note"),
        ('[{"percentage": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}]", "stages[0].x"),
    ],
    ids=["surrogate", "nul", "deep"],
)
def test_rollout_create__bad_string_in_stages__400_naming_the_stage(
    edge_flag, staff, stages, field
) -> None:
    response = staff.post(
        ROLLOUT_URL, data='{"stages": ' + stages + "}", content_type="application/json"
    )

    assert response.status_code == 400, response.content
    assert next(iter(response.json())).startswith(field), response.json()
    assert not RolloutPlan.objects.exists()


def test_rollout_plan__bad_segment_key__refused_naming_the_list(edge_flag) -> None:
    plan = RolloutPlan(flag_state=edge_flag, included_segments=["edge-ready", "a\x00b"])

    with pytest.raises(ValidationError) as refused:
        plan.full_clean()

    assert "included_segments" in refused.value.message_dict


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"variants": [{"name": "blue\ud800", "weight": 1000}]}, "variants"),
        ({"variants": _deep(5000)}, "variants"),
        ({"off_value": "a\x00b"}, "off_value"),
        ({"dependencies": [{"feature": "x", "note": "\x07"}]}, "dependencies"),
        ({"dependencies": [{"feature": "x", "n": 2**70}]}, "dependencies"),
    ],
    ids=["variant-surrogate", "variants-deep", "off-value-nul", "dependency-bell", "huge-int"],
)
def test_flag_state_update__bad_json__refused_naming_the_field(edge_flag, fields, named) -> None:
    with pytest.raises(ValidationError) as refused:
        flag_state_update(state=edge_flag, **fields)

    assert named in refused.value.message_dict


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (
            {"constraints": [{"contextName": "region", "operator": "IN", "values": ["\ud83d"]}]},
            "constraints",
        ),
        ({"parameters": {"userIds": "a\x00"}, "strategy": "userWithId"}, "parameters"),
        ({"group_id": "g\x00"}, "group_id"),
    ],
    ids=["constraint-surrogate", "parameter-nul", "group-nul"],
)
def test_rule_create__bad_string__refused_naming_the_field(edge_flag, fields, named) -> None:
    with pytest.raises(ValidationError) as refused:
        rule_create(state=edge_flag, **fields)

    assert named in refused.value.message_dict
    assert not TargetingRule.objects.exists()


@pytest.mark.parametrize(
    "ui_state",
    ['{"component": "\\ud800"}', '{"copy": {"title": "a\\u0000"}}', "[" * 5000 + "]" * 5000],
    ids=["surrogate", "nul", "deep"],
)
def test_rung_form__bad_ui_state__form_error_on_ui_state(edge_flag, ui_state) -> None:
    # The admin's forms are ModelForms: the model field's validators and form field reach them.
    form_class = modelform_factory(Rung, fields=["flag", "order", "key", "ui_state", "runs_on"])
    form = form_class(
        data={
            "flag": edge_flag.flag_id,
            "order": 9,
            "key": "extra",
            "ui_state": ui_state,
            "runs_on": "none",
        }
    )

    assert not form.is_valid()
    assert "ui_state" in form.errors
    form.as_p()  # the page re-showing the value must render (and encode)


def _export(name: str, user_ids: str = "a,b") -> dict[str, Any]:
    return {
        "version": 2,
        "features": [
            {
                "name": name,
                "enabled": True,
                "strategies": [{"name": "userWithId", "parameters": {"userIds": user_ids}}],
            }
        ],
    }


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (_export("ok", user_ids="a,\ud800"), "features[0].strategies[0].parameters.userIds"),
        (_export("bad\x00name"), "features[0].name"),
    ],
    ids=["surrogate", "nul"],
)
def test_unleash_import__bad_string__refused_naming_the_path_nothing_imported(
    environment, document, path
) -> None:
    with pytest.raises(JsonInputError) as refused:
        unleash_import(document=document, environment=environment)

    assert refused.value.field == path
    assert not Flag.objects.exists()


def test_unleash_import__clean_export__imported(environment) -> None:
    report = unleash_import(document=json.loads(json.dumps(_export("ok"))), environment=environment)

    assert report.flags_created == ["ok"]


def test_import_unleash_command__nul_in_export__command_error_naming_the_path(db, tmp_path) -> None:
    export = tmp_path / "features.json"
    export.write_text(json.dumps(_export("bad\x00name")))

    with pytest.raises(CommandError, match=r"features\[0\]\.name"):
        call_command("import_unleash", str(export), "--environment", "staging")

    assert not Flag.objects.exists()
