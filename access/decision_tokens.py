"""Decision tokens: the server's word for what it served a client.

Every decision of an edge feature for a client in a capability segment carries
`metadata.decisionToken` (plain flags under a rollout plan too); an event about that flag must
echo it, and the fold counts the event in the token's segment, arm, rung and model version,
never in ones the client claims. A token is

    3.<issued, hex epoch s>.<arm t|c|n><signed 1|0>.<segment identity>.<rung>.<model>.<MAC>

where arm `n` is a decision outside any rollout arm, `rung` the rung served (empty for a plain
flag) and `model` the on-device model version served (empty for none; it may hold dots, the
MAC never does). MAC is HMAC-SHA256 (truncated to 96 bits, base64url) under
EDGEFLAGS_DECISION_TOKEN_SECRET of the environment id, the flag key, the targeting key, the
segment, the arm, the signed-identity bit, the issue time, the rung and the model version.
The environment, flag and client are bound by the MAC without being written in the token (the
verifier has them), so the token stays short and names no client. The segment is its stable
identity, not its key: a token issued before a rename still counts in the same segment after
it. Tokens of the previous format (2.<issued>.<bits>.<segment>.<MAC>) are still verified
until they expire.

The issue time is rounded down to a 24th of the lifetime (an hour by default): every
evaluation of one client within that step answers the same bytes, so ETag / If-None-Match
keeps working.

Pure Python over `hmac` (settings are read by the callers): the hot path builds one
`TokenIssuer` per request and pays one HMAC copy and digest per token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

VERSION = "3"
PREVIOUS_VERSION = "2"  # verified until its tokens expire
MAC_BYTES = 12
MAX_TOKEN = 160
MAX_SEGMENT_DIGITS = 10  # a PositiveIntegerField's range
TREATMENT, CONTROL, NO_ARM = "treatment", "control", "none"
_ARM_CODES = {TREATMENT: "t", CONTROL: "c", NO_ARM: "n"}
_ARMS = {code: arm for arm, code in _ARM_CODES.items()}
# Tokens issued this far ahead of the verifier's clock (another process' clock) still pass.
CLOCK_SKEW_S = 300


class TokenInvalid(ValueError):
    """A token that does not prove a decision of this flag for this client; says why."""


@dataclass(frozen=True, slots=True)
class Served:
    """What a valid token says the server served."""

    segment: int  # the segment's identity
    arm: str  # treatment, control, or none (outside any rollout arm)
    signed: bool
    issued: int
    rung: str = ""  # the rung served ("" for a plain flag, and for tokens of version 2)
    model: str = ""  # the on-device model version served ("" for none)


def _field(value: str) -> bytes:
    # Length-prefixed, so no choice of targeting key or segment can shift another field.
    data = value.encode("utf-8", "surrogatepass")
    return b"%d:%s" % (len(data), data)


class _Keyed:
    """HMAC-SHA256 under one secret with its padded inner and outer states computed once:
    hashing a short message then costs two SHA-256 copies, a third of `hmac.new`'s set-up."""

    __slots__ = ("inner", "outer")

    def __init__(self, secret: bytes):
        key = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
        key = key.ljust(_BLOCK, b"\0")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))


_BLOCK = 64  # SHA-256's block size
_keyed: dict[bytes, _Keyed] = {}


def _prefix(
    secret: bytes, environment_id: int, targeting_key: str, version: str = VERSION
) -> tuple[Any, Any]:
    """The HMAC state after the request's part of the message, and the outer state."""
    keyed = _keyed.get(secret)
    if keyed is None:
        keyed = _keyed[secret] = _Keyed(secret)
    inner = keyed.inner.copy()
    inner.update(b"edgeflags-decision/" + version.encode() + b"|%d|" % environment_id)
    inner.update(_field(targeting_key))
    return inner, keyed.outer


def _suffix(
    flag_key: str, segment: str, bits: str, served: tuple[str, str] | None = ("", "")
) -> bytes:
    """The decision's part of the message; `served` (rung, model version) is None for a
    token of the previous version, which had neither."""
    suffix = b"|" + _field(flag_key) + b"|" + _field(segment) + b"|" + bits.encode()
    if served is not None:
        suffix += b"|" + _field(served[0]) + b"|" + _field(served[1])
    return suffix


def _mac(
    prefix: tuple[Any, Any],
    flag_key: str,
    segment: str,
    bits: str,
    served: tuple[str, str] | None,
) -> str:
    inner = prefix[0].copy()
    inner.update(_suffix(flag_key, segment, bits, served))
    outer = prefix[1].copy()
    outer.update(inner.digest())
    return base64.urlsafe_b64encode(outer.digest()[:MAC_BYTES]).decode()


def issue_step(lifetime_s: int) -> int:
    """How coarsely issue times are rounded: a 24th of the lifetime, at least a second."""
    return max(1, lifetime_s // 24)


class TokenIssuer:
    """Issues the tokens of one request (one environment, one client, one moment)."""

    __slots__ = ("_environment_id", "_issued", "_prefix", "_secret", "_signed", "_targeting_key")

    def __init__(
        self,
        *,
        secret: bytes,
        environment_id: int,
        targeting_key: str,
        signed: bool,
        now: float,
        lifetime_s: int,
    ):
        step = issue_step(lifetime_s)
        self._secret = secret
        self._environment_id = environment_id
        self._targeting_key = targeting_key
        # Hashed at the first token: most requests decide no flag under a plan.
        self._prefix: tuple[Any, Any] | None = None
        self._issued = f"{int(now) // step * step:x}"
        self._signed = "1" if signed else "0"

    @property
    def signed(self) -> bool:
        """Whether the request proved its identity (a valid identityHash)."""
        return self._signed == "1"

    def issue(self, flag_key: str, segment: int, arm: str, rung: str = "", model: str = "") -> str:
        """The token of a decision of `flag_key` that put the client in (`segment`, the
        segment's identity, `arm`) and served it `rung` running `model`."""
        key = (flag_key, str(segment), arm, self._issued, self._signed, rung, model)
        parts = _parts.get(key)
        if parts is None:
            parts = _token_parts(*key)
        head, suffix = parts
        prefix = self._prefix
        if prefix is None:
            prefix = self._prefix = _prefix(self._secret, self._environment_id, self._targeting_key)
        inner = prefix[0].copy()
        inner.update(suffix)
        outer = prefix[1].copy()
        outer.update(inner.digest())
        return head + base64.urlsafe_b64encode(outer.digest()[:MAC_BYTES]).decode()


# (flag, segment, arm, issued, signed, rung, model) -> (the token up to its MAC, the message's
# decision part): the same few combinations recur in every request of an hour.
_parts: dict[tuple[str, str, str, str, str, str, str], tuple[str, bytes]] = {}
MAX_PARTS = 4096


def _token_parts(
    flag_key: str, segment: str, arm: str, issued: str, signed: str, rung: str, model: str
) -> tuple[str, bytes]:
    bits = f"{issued}.{_ARM_CODES[arm]}{signed}"
    parts = (
        f"{VERSION}.{bits}.{segment}.{rung}.{model}.",
        _suffix(flag_key, segment, bits, (rung, model)),
    )
    if len(_parts) >= MAX_PARTS:
        _parts.clear()  # an hour's combinations are few; older hours' are not needed
    _parts[(flag_key, segment, arm, issued, signed, rung, model)] = parts
    return parts


class TokenVerifier:
    """Checks the tokens echoed in one client's event batch."""

    __slots__ = ("_lifetime_s", "_now", "_prefix", "_previous", "_seen")

    def __init__(
        self, *, secret: bytes, environment_id: int, targeting_key: str, now: float, lifetime_s: int
    ):
        self._prefix = _prefix(secret, environment_id, targeting_key)
        self._previous = _prefix(secret, environment_id, targeting_key, PREVIOUS_VERSION)
        self._now = now
        self._lifetime_s = lifetime_s
        # A batch echoes the same few tokens many times: each is checked once.
        self._seen: dict[tuple[str, str], Served] = {}

    def verify(self, token: str, flag_key: str) -> Served:
        """What `token` proves about a decision of `flag_key`; TokenInvalid when nothing."""
        known = self._seen.get((token, flag_key))
        if known is not None:
            return known
        version, _, rest = token.partition(".")
        issued_text, _, rest = rest.partition(".")
        bits, _, rest = rest.partition(".")
        rest, _, mac = rest.rpartition(".")
        served: tuple[str, str] | None = None
        if version == VERSION:
            segment, _, rest = rest.partition(".")
            rung, _, model = rest.partition(".")
            served = (rung, model)
        else:
            segment = rest
        if (
            version not in (VERSION, PREVIOUS_VERSION)
            or not (0 < len(segment) <= MAX_SEGMENT_DIGITS and segment.isascii())
            or not segment.isdigit()
            or len(bits) != 2
            or bits[0] not in _ARMS
        ):
            raise TokenInvalid("not a decision token of this server")
        try:
            issued = int(issued_text, 16)
        except ValueError:
            raise TokenInvalid("not a decision token of this server") from None
        arm = _ARMS[bits[0]]
        prefix = self._prefix if served is not None else self._previous
        expected = _mac(prefix, flag_key, segment, f"{issued_text}.{bits}", served)
        if not hmac.compare_digest(expected.encode(), mac.encode("utf-8", "replace")):
            raise TokenInvalid(
                "does not match: not issued by this server for this flag, client and environment"
            )
        # The issue time is rounded down (by under a step): a token lives a little less
        # than the lifetime, never more.
        if issued > self._now + CLOCK_SKEW_S:
            raise TokenInvalid("issued in the future")
        if issued + self._lifetime_s < self._now:
            raise TokenInvalid(
                f"expired (decision tokens live {self._lifetime_s} s): evaluate again"
            )
        rung, model = served or ("", "")
        answer = Served(int(segment), arm, bits[1] == "1", issued, rung, model)
        self._seen[(token, flag_key)] = answer
        return answer


def identity_hash(secret: str, targeting_key: str) -> str:
    """HMAC-SHA256 (hex) of a targeting key under an environment's identity secret: what the
    customer's backend computes and sends as `identityHash`."""
    key = targeting_key.encode("utf-8", "surrogatepass")
    return hmac.new(secret.encode(), key, hashlib.sha256).hexdigest()
