"""Every console page and management API read asks the database a bounded number of
queries: as many for a fleet of 20 flags × 8 segments as for 2 flags × 2 segments (no query
per flag, segment or row: ten times the flags would show one). The budget's fleet of 50 × 8
is bench/console_bench.py's; every flag added here compiles the snapshot again, so 50 cost
the suite 30 s for nothing more to learn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rollout.audit import Actor
from rollout.models import FlagState
from rollout.roles import RELEASE_MANAGER, roles_ensure
from rollout.rollouts import rollout_action, rollout_plan_create
from rollout.services import flag_create, flag_ladder_set, flag_state_update
from segments.models import CapabilitySegment
from tests.support.rollouts import LADDER, START

pytestmark = pytest.mark.django_db

PAGES = (
    "/admin/console/?environment=production",
    "/admin/console/flags/{last_flag}?environment=production",  # its rollout: every segment
    "/admin/console/segments/",
    "/admin/console/audit/",
    "/admin/console/audit.csv",
    "/api/v1/flags",  # the management API, as a release manager's session reads it
    "/api/v1/rollouts/{last_flag}/production",
)
QUERY_BUDGET = 16  # per page, whatever the fleet's size


@pytest.fixture
def manager(client):
    roles_ensure()
    user = User.objects.create_user("rm", password="pw-for-tests-only", is_staff=True)
    user.groups.add(Group.objects.get(name=RELEASE_MANAGER))
    client.force_login(user)
    return client


def _grow(environment: Any, publish: Callable[..., Any], flags: int, segments: int) -> None:
    """Grow the fleet to `flags` flags with ladders and rollouts over `segments` segments,
    each segment with audit history (one publication for all of it)."""

    def build() -> None:
        for identity in range(CapabilitySegment.objects.count() + 1, segments + 1):
            key = f"segment-{identity}"
            CapabilitySegment.objects.create(identity=identity, key=key, label=key)
        for number in range(FlagState.objects.filter(environment=environment).count(), flags):
            flag = flag_create(key=f"flag-{number:03d}", kind="string", off_value="off")
            flag_ladder_set(flag=flag, rungs=LADDER, baseline="lite")
            state = FlagState.objects.get(flag=flag, environment=environment)
            flag_state_update(state=state, enabled=True)
            rollout_plan_create(state=state, actor=Actor("test"), now=START)
            rollout_action(
                flag=flag.key,
                environment=environment.key,
                segment="segment-1",
                action="pause",
                actor=Actor("test"),
                reason="history for the page",
            )

    publish(build)


def _queries(manager: Any, last_flag: str) -> dict[str, int]:
    counts = {}
    for page in PAGES:
        with CaptureQueriesContext(connection) as captured:
            response = manager.get(page.format(last_flag=last_flag))
            if response.streaming:
                b"".join(response.streaming_content)
        assert response.status_code == 200, (page, response.status_code)
        counts[page.split("?")[0]] = len(captured.captured_queries)
    return counts


def test_console_pages_and_api__20_flags_by_8_segments__as_many_queries_as_2_by_2(
    environment, publish, manager
) -> None:
    _grow(environment, publish, flags=2, segments=2)
    small = _queries(manager, "flag-001")

    _grow(environment, publish, flags=20, segments=8)
    large = _queries(manager, "flag-019")

    assert large == small
    assert max(large.values()) <= QUERY_BUDGET, large
