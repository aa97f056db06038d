"""Signed identities: the secret is generated once, audited, superusers only, and evaluation
verifies identityHash from what the snapshot store holds (never from the snapshot document)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError

from access.client_trust import identity_counts, identity_signed
from access.decision_tokens import identity_hash
from access.signed_identities import (
    environment_identity_secret_rotate,
    environment_signed_identities_require,
)
from ops.errors import DomainError
from rollout.audit import Actor
from rollout.models import AuditEntry, Environment, SnapshotVersion
from rollout.snapshots.store import store

pytestmark = pytest.mark.django_db


def _superuser() -> User:
    return User.objects.create_superuser("root", "r@example.com", "pw-for-tests-only")


def test_identity_secret_rotate__superuser__new_secret_audited_published_never_in_snapshot(
    environment, client_key, publish
) -> None:
    version = SnapshotVersion.objects.filter(environment=environment).count()

    secret = publish(
        lambda: environment_identity_secret_rotate(
            environment=environment, actor=Actor.of(_superuser())
        )
    )

    assert len(secret) == 64
    entry = AuditEntry.objects.get(action="environment.identity_secret")
    assert (entry.actor_name, entry.environment) == ("root", "production")
    assert secret not in str(entry.before) + str(entry.after)
    latest = SnapshotVersion.objects.filter(environment=environment).order_by("-version").first()
    assert SnapshotVersion.objects.filter(environment=environment).count() == version + 1
    assert secret not in str(latest.document)
    info = store.key(client_key)
    assert info is not None
    assert identity_signed(info, "user-1", identity_hash(secret, "user-1"))
    assert not identity_signed(info, "user-2", identity_hash(secret, "user-1"))
    assert not identity_signed(info, "user-1", "0" * 64)
    assert not identity_signed(info, "user-1", None)


def test_identity_secret_rotate__staff_not_superuser__refused(environment) -> None:
    staff = User.objects.create_user("release", password="pw-for-tests-only", is_staff=True)

    with pytest.raises(PermissionDenied):
        environment_identity_secret_rotate(environment=environment, actor=Actor.of(staff))
    assert Environment.objects.get().identity_secret == ""


def test_signed_identities_require__without_secret__refused_then_required(
    environment, client_key, publish
) -> None:
    with pytest.raises(DomainError, match="generate an identity secret first"):
        environment_signed_identities_require(
            environment=environment, required=True, actor=Actor("t")
        )
    publish(lambda: environment_identity_secret_rotate(environment=environment, actor=Actor("t")))

    publish(
        lambda: environment_signed_identities_require(
            environment=environment, required=True, actor=Actor("t")
        )
    )

    info = store.key(client_key)
    assert info is not None
    assert info.require_signed_identities
    assert not identity_counts(info, signed=False)
    assert identity_counts(info, signed=True)
    assert AuditEntry.objects.filter(action="environment.signed_identities").count() == 1


def test_admin_action__superuser__secret_shown_once(environment, client) -> None:
    _superuser()
    client.login(username="root", password="pw-for-tests-only")
    url = "/admin/rollout/environment/"

    page = client.post(
        url,
        {"action": "identity_secret_rotate", "_selected_action": [environment.pk]},
        follow=True,
    )

    secret = Environment.objects.get().identity_secret
    assert secret
    assert secret.encode() in page.content
    assert secret.encode() not in client.get(url).content  # only that once


def test_admin_action__staff_without_superuser__not_offered_and_refused(
    environment, client
) -> None:
    user = User.objects.create_user("viewer", password="pw-for-tests-only", is_staff=True)
    # may look at and edit environments, but is no superuser
    user.user_permissions.add(*Permission.objects.filter(codename__endswith="_environment"))
    client.login(username="viewer", password="pw-for-tests-only")

    page = client.get("/admin/rollout/environment/")
    client.post(
        "/admin/rollout/environment/",
        {"action": "identity_secret_rotate", "_selected_action": [environment.pk]},
    )

    assert b"identity_secret_rotate" not in page.content
    assert Environment.objects.get().identity_secret == ""


def test_signed_identities_command__rotate_and_require(environment, capsys) -> None:
    call_command("signed_identities", "--environment", "production", "--rotate-secret", "--require")

    env = Environment.objects.get()
    assert capsys.readouterr().out.strip() == env.identity_secret
    assert env.require_signed_identities
    with pytest.raises(CommandError):
        call_command("signed_identities", "--environment", "nope", "--require")
