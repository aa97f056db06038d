"""Unleash-compatible bucketing: murmur3 (x86, 32-bit, unsigned) into 1..modulus."""

from __future__ import annotations

import mmh3

ROLLOUT_SEED = 0
VARIANT_SEED = 86028157


def normalized(identifier: str, group_id: str, modulus: int = 100, seed: int = ROLLOUT_SEED) -> int:
    """The bucket of `identifier` in `group_id`: murmur3("group:id") mod modulus, plus one."""
    digest: int = mmh3.hash(f"{group_id}:{identifier}".encode(), seed, signed=False)
    return digest % modulus + 1
