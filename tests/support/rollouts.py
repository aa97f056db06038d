"""Shared rollout builders (a pytest plugin the root conftest loads): a small edge feature
with a ladder and three capability segments, its rollout plan, a feeder that writes
aggregates straight into MetricBucket (the fold's output) for the controller to read, and a
test client logged in as a release manager."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from django.test import Client

from rollout.audit import Actor
from rollout.models import FlagState, MetricBucket, RolloutPlan, SegmentRollout
from rollout.roles import RELEASE_MANAGER, roles_ensure
from rollout.rollouts import rollout_plan_create
from rollout.selectors import segment_identities, segment_identity, with_segment_keys
from rollout.services import flag_create, flag_ladder_set, flag_state_update
from segments.models import CapabilitySegment

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
SEGMENT_KEYS = ("edge-ready", "cloud-only", "constrained-network")  # identities 1, 2, 3
LADDER = [
    {
        "key": "edge",
        "runs_on": "device",
        "ui_state": {"component": "SmartCompose"},
        "requirements": [{"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"}],
    },
    {"key": "cloud", "runs_on": "cloud", "ui_state": {"component": "SmartCompose"}},
    {"key": "lite", "ui_state": {"component": "TemplateReplies"}},
    {"key": "off", "ui_state": {"component": "None"}},
]


@pytest.fixture
def edge_flag(environment, publish) -> FlagState:
    for identity, key in enumerate(SEGMENT_KEYS, start=1):
        publish(
            lambda i=identity, k=key: CapabilitySegment.objects.create(identity=i, key=k, label=k)
        )
    flag = publish(lambda: flag_create(key="smart-compose", kind="string", off_value="off"))
    publish(lambda: flag_ladder_set(flag=flag, rungs=LADDER, baseline="lite"))
    state = FlagState.objects.get(flag=flag, environment=environment)
    return publish(lambda: flag_state_update(state=state, enabled=True))


@pytest.fixture
def plan(edge_flag, publish) -> RolloutPlan:
    return publish(lambda: rollout_plan_create(state=edge_flag, actor=Actor("test"), now=START))


@pytest.fixture
def feed(environment) -> Callable[..., None]:
    """Write an hour of aggregates per arm, like the fold would, for one segment (by its
    current key)."""

    def write(
        segment: str,
        hour: int,
        *,
        clients: tuple[int, int],
        failures: tuple[int, int] = (0, 0),
        latency: tuple[float, float] = (0.05, 0.05),
        seed: int = 0,
        flag: str = "smart-compose",
    ) -> None:
        identities = segment_identities()
        rng = np.random.default_rng(seed * 1000 + hour)
        minute = START + timedelta(hours=hour, minutes=30)
        for arm, n, failed, share in (
            ("treatment", clients[0], failures[0], latency[0]),
            ("control", clients[1], failures[1], latency[1]),
        ):
            values = rng.binomial(20, share, size=n) / 20
            fields: dict[str, Any] = {
                "exposures": n,
                "clients": n,
                "failures": failed,
                "latency_n": n,
                "latency_sum": float(values.sum()),
                "latency_sumsq": float(np.square(values).sum()),
            }
            MetricBucket.objects.create(
                environment=environment,
                flag=flag,
                segment_identity=identities[segment],
                arm=arm,
                minute=minute,
                **fields,
            )

    return write


def rollout_row(key: str = "edge-ready") -> SegmentRollout:
    """The rollout row of the segment whose key is `key` now (of the only plan)."""
    return with_segment_keys(SegmentRollout.objects.filter(segment_identity=identity_of(key))).get()


def rows_of(key: str) -> QuerySet[SegmentRollout]:
    """The rollout rows of the segment whose key is `key` now (none if no segment has it)."""
    return SegmentRollout.objects.filter(segment_identity=segment_identity(key))


def identity_of(key: str) -> int:
    identity = segment_identity(key)
    assert identity is not None, f"no segment {key!r}"
    return identity


@pytest.fixture
def staff(client: Client) -> Client:
    """The test client logged in as a release manager (may change flags and rollouts)."""
    roles_ensure()
    user = User.objects.create_user("rm", password="pw-for-tests-only", is_staff=True)
    user.groups.add(Group.objects.get(name=RELEASE_MANAGER))
    client.force_login(user)
    return client
