"""The rollout plan's admin form: segment lists shown and typed as keys, stored as the
segments' identities (a rename leaves the plan alone)."""

from __future__ import annotations

import html
import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from backoffice.flags import RolloutPlanForm
from rollout.guardrails.plan import default_guardrails_json, default_stages_json
from rollout.models import AuditEntry, FlagState, RolloutPlan
from rollout.selectors import segment_identity
from rollout.services import flag_create
from segments.models import CapabilitySegment

pytestmark = pytest.mark.django_db


def test_segment_list_field__keys_in__identities_stored__keys_shown(plan) -> None:
    field = RolloutPlanForm.base_fields["excluded_segments"]
    identity = segment_identity("edge-ready")

    assert field.clean('["edge-ready", "save-data"]') == [identity, 0]
    assert field.prepare_value([identity, "*"]) == '["edge-ready", "*"]'
    with pytest.raises(ValidationError, match="no segment 'no-such'"):
        field.clean('["no-such"]')
    with pytest.raises(ValidationError, match="must be a list of segment keys"):
        field.clean("[3]")


def test_change_page__renamed_segment__shows_its_new_key(plan, superuser) -> None:
    identity = segment_identity("edge-ready")
    RolloutPlan.objects.filter(pk=plan.pk).update(excluded_segments=[identity])
    CapabilitySegment.objects.filter(identity=identity).update(key="phones-with-npu")
    client = superuser

    page = client.get(reverse("admin:rollout_rolloutplan_change", args=[plan.pk]))

    assert page.status_code == 200
    assert '["phones-with-npu"]' in html.unescape(page.content.decode())


def _add_form(state, **fields) -> dict[str, str]:
    return {
        "flag_state": str(state.pk),
        "target_rung": "",
        "stages": json.dumps(default_stages_json()),
        "guardrails": json.dumps(default_guardrails_json()),
        "alpha": "0.05",
        "burn_in_clients": "50",
        "no_data_hours": "24",
        "included_segments": '["*"]',
        "excluded_segments": '["constrained-network"]',
        "segments-TOTAL_FORMS": "0",
        "segments-INITIAL_FORMS": "0",
        **fields,
    }


def test_add_page__new_plan__made_by_the_apis_service_segments_waiting(
    edge_flag, publish, superuser
) -> None:
    client = superuser

    response = publish(
        lambda: client.post(reverse("admin:rollout_rolloutplan_add"), _add_form(edge_flag))
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    plan = RolloutPlan.objects.get(flag_state=edge_flag)
    assert plan.excluded_segments == [segment_identity("constrained-network")]
    assert {row.state for row in plan.segments.all()} == {"pending"}
    assert len(plan.segments.all()) == 3  # edge-ready, cloud-only, save-data
    entry = AuditEntry.objects.get(action="rollout.plan")
    assert entry.after["excludedSegments"] == ["constrained-network"]
    assert entry.reason == "created in the admin"


def test_add_page__flag_without_ladder__form_error_nothing_made(
    environment, publish, superuser
) -> None:
    flag = publish(lambda: flag_create(key="plain", kind="boolean"))
    state = FlagState.objects.get(flag=flag, environment=environment)
    client = superuser

    response = client.post(reverse("admin:rollout_rolloutplan_add"), _add_form(state))

    assert response.status_code == 200
    assert "plain has no ladder: only edge features ramp" in response.content.decode()
    assert not RolloutPlan.objects.exists()
