"""Strict SemVer 2.0.0 parsing and precedence."""

import pytest

from rollout.engine.semver import parse_semver

ORDERED = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.10.0",
    "2.0.0",
]


def test_parse_semver__semver_org_examples__ordered_by_precedence() -> None:
    versions = [parse_semver(text) for text in ORDERED]

    precedences = [v.precedence for v in versions if v is not None]
    assert len(precedences) == len(ORDERED)
    assert precedences == sorted(set(precedences))


def test_parse_semver__build_metadata__ignored_for_equality() -> None:
    assert parse_semver("1.2.3+build.7") == parse_semver("1.2.3+other")


@pytest.mark.parametrize(
    "text",
    ["v1.2.3", "1.2", "01.2.3", "1.2.3-01", "1.2.3 ", " 1.2.3", "1.2.3\n", "١.٢.٣", "1.2.3-", ""],
)
def test_parse_semver__not_strict_semver__none(text) -> None:
    assert parse_semver(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "1" * 17 + ".0.0",  # a numeric part past npm's 16 digits
        "1.0.0-" + "9" * 5000,  # Python would refuse this int (4,300-digit limit)
        "1.0.0-" + "a" * 251,  # 257 characters in all
    ],
    ids=["major-17-digits", "prerelease-5000-digits", "over-256-characters"],
)
def test_parse_semver__over_the_length_caps__not_a_version(text) -> None:
    assert parse_semver(text) is None


def test_parse_semver__at_the_caps__a_version() -> None:
    assert parse_semver("9" * 16 + ".0.0-" + "a" * 200) is not None
