"""Signed identities (LaunchDarkly's secure mode): an environment's identity secret and the
switch that makes only signed identities count.

The customer's backend computes identityHash = hex HMAC-SHA256(secret, targetingKey) and
passes it to its app, which sends it in the evaluation context; evaluation checks it without
a query (`access.client_trust.identity_signed`, over what the snapshot store holds with the
API keys) and records the result in every decision token. Saving an Environment publishes a
snapshot version on commit (rollout.signals), which is what makes every process load the
keys, and these fields with them, again.
"""

from __future__ import annotations

import secrets

from django.core.exceptions import PermissionDenied
from django.db import transaction

from ops.errors import DomainError
from rollout.audit import Actor, audit_record
from rollout.models import Environment


def _superuser_only(actor: Actor, what: str) -> None:
    # A person must be a superuser; the command line (no user) already holds the database.
    if actor.user is not None and not actor.user.is_superuser:
        raise PermissionDenied(f"{what} needs a superuser")


@transaction.atomic
def environment_identity_secret_rotate(*, environment: Environment, actor: Actor) -> str:
    """Generate the environment's identity secret (replacing any previous one, which stops
    verifying at once) and return it: it is shown this once. Superusers only; audited."""
    _superuser_only(actor, "generating an identity secret")
    locked = Environment.objects.select_for_update().get(pk=environment.pk)
    had_secret = bool(locked.identity_secret)
    secret = secrets.token_hex(32)
    locked.identity_secret = secret
    locked.save(update_fields=["identity_secret"])
    audit_record(
        actor=actor,
        action="environment.identity_secret",
        environment=locked.key,
        before={"identitySecret": "set" if had_secret else "none"},
        after={"identitySecret": "rotated" if had_secret else "set"},
        reason="identity secret generated",
    )
    environment.identity_secret = secret
    return secret


@transaction.atomic
def environment_signed_identities_require(
    *, environment: Environment, required: bool, actor: Actor
) -> Environment:
    """Switch whether only signed identities count in guardrails and may store a profile.
    Superusers only; audited; refused without a secret (no client could be signed)."""
    _superuser_only(actor, "changing signed-identity mode")
    locked = Environment.objects.select_for_update().get(pk=environment.pk)
    if required and not locked.identity_secret:
        raise DomainError("require_signed_identities", "generate an identity secret first")
    if locked.require_signed_identities != required:
        audit_record(
            actor=actor,
            action="environment.signed_identities",
            environment=locked.key,
            before={"requireSignedIdentities": locked.require_signed_identities},
            after={"requireSignedIdentities": required},
            reason="signed identities " + ("required" if required else "no longer required"),
        )
        locked.require_signed_identities = required
        locked.save(update_fields=["require_signed_identities"])
    environment.require_signed_identities = required
    return locked
