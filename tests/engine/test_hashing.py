"""Bucketing vectors of bucketing.md §3, checked against mmh3."""

import pytest

from rollout.engine.hashing import VARIANT_SEED, normalized


@pytest.mark.parametrize(
    ("identifier", "group", "modulus", "seed", "expected"),
    [
        ("122", "AB12A", 100, 0, 23),
        ("155", "AB12A", 100, 0, 100),
        ("174", "Feature.flexibleRollout.10", 100, 0, 10),
        ("25", "Feature.flexibleRollout.userId.55", 100, 0, 55),
        ("2", "Feature.Variants.B", 2, VARIANT_SEED, 2),
        ("0", "Feature.Variants.B", 2, VARIANT_SEED, 1),
        ("232", "Feature.Variants.C", 99, VARIANT_SEED, 18),
    ],
)
def test_normalized__spec_vectors__same_bucket(identifier, group, modulus, seed, expected) -> None:
    assert normalized(identifier, group, modulus, seed) == expected


def test_normalized__100k_keys__uniform_within_one_percent() -> None:
    counts = [0] * 101
    for i in range(100_000):
        counts[normalized(f"user-{i}", "uniformity-check")] += 1

    shares = [c / 100_000 for c in counts[1:]]
    assert counts[0] == 0
    # each bucket holds 1 % of keys; ±0.1 point is 3.2 standard deviations at n=100k
    assert all(abs(share - 0.01) <= 0.001 for share in shares), (min(shares), max(shares))
