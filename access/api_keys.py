"""API keys: created (the raw key shown once, only its hash stored) and revoked, each
audited. Client keys are public by design; server keys are secrets."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from ops.errors import DomainError
from rollout.audit import SYSTEM, Actor, audit_record
from rollout.models import ApiKey, Environment
from rollout.roles import role_require
from rollout.snapshots.store import hash_api_key

KEY_PREFIXES = {ApiKey.Scope.CLIENT: "efc_", ApiKey.Scope.SERVER: "efs_"}


@transaction.atomic
def api_key_create(
    *,
    environment: Environment,
    scope: str,
    name: str,
    actor: Actor = SYSTEM,
    reason: str = "",
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is never stored or shown again."""
    role_require(actor, "add", "rollout.apikey")
    if scope not in KEY_PREFIXES:
        raise DomainError("scope", f"must be one of {', '.join(KEY_PREFIXES)}, not {scope!r}")
    raw_key = KEY_PREFIXES[ApiKey.Scope(scope)] + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        environment=environment,
        scope=scope,
        name=name,
        prefix=raw_key[:12],
        key_hash=hash_api_key(raw_key),
        created_by_id=actor.user.pk if actor.user is not None and actor.user.pk else None,
    )
    audit_record(
        actor=actor,
        action="apikey.create",
        environment=environment.key,
        after=_key_json(api_key),
        reason=reason or "new key",
    )
    return api_key, raw_key


def _key_json(api_key: ApiKey) -> dict[str, Any]:
    # The prefix names the key; the secret itself is never in the log.
    return {
        "id": api_key.pk,
        "prefix": api_key.prefix,
        "name": api_key.name,
        "scope": api_key.scope,
        "revokedAt": api_key.revoked_at.isoformat() if api_key.revoked_at else None,
    }


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: Actor = SYSTEM, reason: str = "") -> ApiKey:
    """Revoke a key; every API process rejects it within one snapshot check interval."""
    role_require(actor, "change", "rollout.apikey")
    if api_key.revoked_at is None:
        before = _key_json(api_key)
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="apikey.revoke",
            environment=api_key.environment.key,
            before=before,
            after=_key_json(api_key),
            reason=reason or "revoked",
        )
    return api_key
