"""An edge feature with a running rollout (tests/rollouts' fixtures) and a release manager."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from rollout.roles import RELEASE_MANAGER, roles_ensure
from tests.rollouts.conftest import edge_flag, plan

__all__ = ["edge_flag", "plan"]


@pytest.fixture
def staff(client: Client) -> Client:
    """The test client logged in as a release manager (may change flags and rollouts)."""
    roles_ensure()
    user = User.objects.create_user("rm", password="pw-for-tests-only", is_staff=True)
    user.groups.add(Group.objects.get(name=RELEASE_MANAGER))
    client.force_login(user)
    return client
