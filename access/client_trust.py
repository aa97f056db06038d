"""What the server vouches for about a client: signed identities and decision tokens.

The per-environment identity secret and its `require_signed_identities` switch reach each
process with the API keys (`KeyInfo`), so none of this asks the database.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from django.conf import settings

from access.decision_tokens import TokenIssuer, TokenVerifier, identity_hash
from rollout.snapshots.store import KeyInfo

MAX_IDENTITY_HASH = 64


def identity_signed(info: KeyInfo, targeting_key: Any, presented_hash: Any) -> bool:
    """Whether `presented_hash` is the environment's HMAC of `targeting_key` (secure mode)."""
    if not info.identity_secret or not isinstance(targeting_key, str) or not targeting_key:
        return False
    if not isinstance(presented_hash, str) or len(presented_hash) != MAX_IDENTITY_HASH:
        return False
    expected = identity_hash(info.identity_secret, targeting_key)
    return hmac.compare_digest(expected, presented_hash.lower())


def identity_counts(info: KeyInfo, signed: bool) -> bool:
    """Whether a client's evidence counts (guardrails, a stored profile): always, unless its
    environment requires signed identities and this one is not signed."""
    return signed or not info.require_signed_identities


def _secret() -> bytes:
    return str(settings.EDGEFLAGS_DECISION_TOKEN_SECRET).encode()


def token_issuer(info: KeyInfo, context: dict[str, Any]) -> TokenIssuer | None:
    """The issuer of this request's decision tokens; None without a targeting key (events
    name their client by it, so a decision for no one cannot be echoed)."""
    targeting_key = context.get("targetingKey")
    if not isinstance(targeting_key, str) or not targeting_key:
        return None
    return TokenIssuer(
        secret=_secret(),
        environment_id=info.environment_id,
        targeting_key=targeting_key,
        signed=identity_signed(info, targeting_key, context.get("identityHash")),
        now=time.time(),
        lifetime_s=settings.EDGEFLAGS_DECISION_TOKEN_TTL_S,
    )


def token_verifier(*, environment_id: int, targeting_key: str, now: float) -> TokenVerifier:
    """The verifier of the tokens one client's event batch echoes."""
    return TokenVerifier(
        secret=_secret(),
        environment_id=environment_id,
        targeting_key=targeting_key,
        now=now,
        lifetime_s=settings.EDGEFLAGS_DECISION_TOKEN_TTL_S,
    )
