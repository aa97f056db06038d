"""Unleash-compatible bucketing: murmur3 (x86, 32-bit, unsigned) into 1..modulus.

See docs/bucketing.md, "The hash".
"""

from __future__ import annotations

import mmh3

ROLLOUT_SEED = 0
VARIANT_SEED = 86028157


def bucket(prefix: str, identifier: str, modulus: int, seed: int) -> int:
    """The bucket of `identifier` under a precomputed "group:" prefix, in 1..modulus."""
    # Always bytes: mmh3 crashes the process on a str holding a lone surrogate (which
    # Python's json accepts); "surrogatepass" hashes such ids deterministically instead.
    key = (prefix + identifier).encode("utf-8", "surrogatepass")
    digest: int = mmh3.hash(key, seed, False)
    return digest % modulus + 1


def normalized(identifier: str, group_id: str, modulus: int = 100, seed: int = ROLLOUT_SEED) -> int:
    """The bucket of `identifier` in `group_id`: murmur3("group:id") mod modulus, plus one."""
    return bucket(f"{group_id}:", identifier, modulus, seed)
