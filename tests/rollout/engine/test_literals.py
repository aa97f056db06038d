"""Numbers, instants and percentages parsed as yggdrasil parses them."""

import pytest

from rollout.engine.literals import (
    parse_date_literal,
    parse_instant,
    parse_number,
    parse_number_literal,
    parse_percentage,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12", 12.0), ("12.0", 12.0), (".5", 0.5), ("5.", 5.0), ("1e3", 1000.0), ("-2", -2.0)],
)
def test_parse_number__rust_accepted_forms__parsed(text, expected) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize("text", ["inf", "-Infinity", "NaN"])
def test_parse_number__special_values__accepted(text) -> None:
    assert parse_number(text) is not None


@pytest.mark.parametrize("text", [" 12", "12 ", "12\n", "1_000", "١٢", "", "abc", "1e", "0x10"])
def test_parse_number__python_only_forms__rejected(text) -> None:
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("12", True),
        ("-1.5", True),
        ("2e10", True),
        (".5", False),
        ("5.", False),
        ("inf", False),
        ("12 ", False),
        ("abc", False),
    ],
)
def test_parse_number_literal__saved_values__strict_grammar(text, valid) -> None:
    assert (parse_number_literal(text) is not None) is valid


def test_parse_instant__offsets__same_instant() -> None:
    assert parse_instant("2022-01-22T13:00:00.000+02:00") == parse_instant("2022-01-22T11:00:00Z")


def test_parse_instant__nanosecond_fractions__kept() -> None:
    earlier = parse_instant("2022-01-22T11:00:00.000000001Z")

    assert earlier is not None
    assert earlier - parse_instant("2022-01-22T11:00:00Z") == 1


@pytest.mark.parametrize(
    "text",
    ["2022-01-22", "2022-01-22T11:00:00", "2022-02-30T11:00:00Z", "2022-01-22T24:00:00Z", "x"],
)
def test_parse_instant__not_rfc3339__none(text) -> None:
    assert parse_instant(text) is None


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2026-01-31T12:00:00Z", True),
        ("2026-01-31T12:00:00.123+01:00", True),
        ("2026-01-31T12:00:00.12Z", False),
        ("2026-01-31t12:00:00Z", False),
        ("2026-01-31T12:00:00Z\n", False),
    ],
)
def test_parse_date_literal__saved_values__exact_format(text, valid) -> None:
    assert (parse_date_literal(text) is not None) is valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("55", 55),
        ("100", 100),
        ("150", 150),
        ("55.5", None),
        (" 50", None),
        ("", None),
        (None, None),
        ("²", None),
    ],
)
def test_parse_percentage__unsigned_ascii_integers_only(text, expected) -> None:
    assert parse_percentage(text) == expected
