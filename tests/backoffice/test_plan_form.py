"""The rollout plan's admin form: segment lists shown and typed as keys, stored as the
segments' identities (a rename leaves the plan alone)."""

from __future__ import annotations

import html

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from backoffice.flags import RolloutPlanForm
from rollout.models import RolloutPlan
from rollout.selectors import segment_identity
from segments.models import CapabilitySegment
from tests.backoffice.conftest import logged_in, person

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


def test_change_page__renamed_segment__shows_its_new_key(plan) -> None:
    identity = segment_identity("edge-ready")
    RolloutPlan.objects.filter(pk=plan.pk).update(excluded_segments=[identity])
    CapabilitySegment.objects.filter(identity=identity).update(key="phones-with-npu")
    client = logged_in(person("root", superuser=True))

    page = client.get(reverse("admin:rollout_rolloutplan_change", args=[plan.pk]))

    assert page.status_code == 200
    assert '["phones-with-npu"]' in html.unescape(page.content.decode())
