"""Management-API tokens (django-rest-knox): created and revoked only here, role-checked and
audited, whether from the admin or `manage.py create_token`.

Knox stores a SHA-512 digest of each token, never the token, and every token expires
(EDGEFLAGS_TOKEN_TTL_DAYS by default); the token itself is shown once, at creation.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from knox.models import AuthToken

from ops.errors import DomainError
from rollout.audit import Actor, audit_record
from rollout.roles import role_require
from rollout.services import model_label

# A token that outlives a year is a password nobody rotates.
MAX_TTL = timedelta(days=366)


def default_ttl() -> timedelta:
    return timedelta(days=settings.EDGEFLAGS_TOKEN_TTL_DAYS)


def _token_json(token: AuthToken) -> dict[str, object]:
    # The key prefix names the token (as knox's admin does); the digest and token never.
    return {
        "object": f"token {token.token_key}… of user {token.user.get_username()}",
        "tokenKey": token.token_key,
        "user": token.user.get_username(),
        "expiry": token.expiry.isoformat() if token.expiry else None,
    }


@transaction.atomic
def management_token_create(
    *, user: User, actor: Actor, ttl: timedelta | None = None, reason: str = ""
) -> tuple[AuthToken, str]:
    """A new token for `user`, expiring after `ttl`; returns the row and the token, which is
    never stored or shown again."""
    role_require(actor, "add", model_label(AuthToken))
    ttl = default_ttl() if ttl is None else ttl
    if not timedelta(0) < ttl <= MAX_TTL:
        raise DomainError("ttl", f"must be more than 0 and at most {MAX_TTL.days} days")
    if not user.is_active or not user.is_staff:
        raise DomainError("user", f"{user.get_username()!r} is not an active staff user")
    token, raw = AuthToken.objects.create(user=user, expiry=ttl)
    audit_record(
        actor=actor,
        action="authtoken.create",
        after=_token_json(token),
        reason=reason or "new management token",
    )
    return token, raw


@transaction.atomic
def management_token_revoke(*, token: AuthToken, actor: Actor, reason: str = "") -> None:
    role_require(actor, "delete", model_label(AuthToken))
    before = _token_json(token)
    token.delete()
    audit_record(actor=actor, action="authtoken.revoke", before=before, reason=reason or "revoked")
