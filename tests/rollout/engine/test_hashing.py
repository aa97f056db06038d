"""Bucketing vectors of docs/bucketing.md, checked against mmh3, and the bucket distribution."""

import mmh3
import pytest

from rollout.engine.hashing import VARIANT_SEED, bucket, normalized


@pytest.mark.parametrize(
    ("key", "seed", "expected"),
    [("", 0, 0), ("hello", 0, 613153351), ("hello", VARIANT_SEED, 3619701165)],
)
def test_murmur3__spec_vectors__same_digest(key, seed, expected) -> None:
    assert mmh3.hash(key.encode(), seed, signed=False) == expected


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


def test_normalized__non_ascii_id__hashes_utf8_bytes() -> None:
    expected = mmh3.hash("grp:Hellø 你好".encode(), 0, signed=False) % 100 + 1

    assert normalized("Hellø 你好", "grp") == expected


def test_bucket__lone_surrogate__deterministic_bucket_not_a_crash() -> None:
    # mmh3 given such a str crashes the interpreter; Python's json accepts "\ud800".
    first = bucket("grp:", "a\ud800", 100, 0)

    assert 1 <= first <= 100
    assert bucket("grp:", "a\ud800", 100, 0) == first


def test_normalized__100k_keys__every_bucket_within_a_tenth_of_a_point_of_one_percent() -> None:
    counts = [0] * 101
    for i in range(100_000):
        counts[normalized(f"user-{i}", "uniformity-check")] += 1

    shares = [c / 100_000 for c in counts[1:]]
    assert counts[0] == 0
    # each bucket holds 1 % of keys; ±0.1 point is 3.2 standard deviations at n=100k
    assert all(abs(share - 0.01) <= 0.001 for share in shares), (min(shares), max(shares))
