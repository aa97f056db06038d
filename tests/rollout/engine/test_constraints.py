"""Constraint operators (docs/bucketing.md): the tricky points of each."""

import pytest

from rollout.engine import ConstraintDef
from tests.rollout.engine.builders import matches


def c(operator: str, *values: str, value: str | None = None, **flags: bool) -> ConstraintDef:
    return ConstraintDef(
        "x",
        operator,
        values,
        value,
        inverted=flags.get("inverted", False),
        case_insensitive=flags.get("case_insensitive", False),
    )


# --- IN / NOT_IN -------------------------------------------------------------------------


def test_in__case_insensitive_flag__ignored_as_in_yggdrasil() -> None:
    assert not matches(c("IN", "Pro", case_insensitive=True), {"x": "pro"})


def test_in__values_with_spaces__not_trimmed() -> None:
    assert not matches(c("IN", " pro"), {"x": "pro"})


def test_in__empty_list__never_matches() -> None:
    assert not matches(c("IN"), {"x": ""})


def test_in__empty_string_value__present() -> None:
    assert matches(c("IN", ""), {"x": ""})


def test_in_inverted__absent_value__matches() -> None:
    assert matches(c("IN", "a", inverted=True), {})


def test_not_in__absent_or_null_value__matches() -> None:
    assert matches(c("NOT_IN", "a"), {})
    assert matches(c("NOT_IN", "a"), {"x": None})


def test_not_in_inverted__absent_value__no_match() -> None:
    assert not matches(c("NOT_IN", "a", inverted=True), {})


@pytest.mark.parametrize(
    ("attribute", "text"),
    [(True, "true"), (False, "false"), (12, "12"), (2.0, "2"), (1.5, "1.5")],
)
def test_in__non_string_attribute__compared_as_its_text(attribute, text) -> None:
    assert matches(c("IN", text), {"x": attribute})


@pytest.mark.parametrize("attribute", [["a"], {"a": 1}])
def test_in__list_or_object_attribute__absent(attribute) -> None:
    assert not matches(c("IN", "a", "['a']", "{'a': 1}"), {"x": attribute})


# --- STR_* ---------------------------------------------------------------------------------


def test_str_starts_with__case_insensitive__lowercases_both_sides() -> None:
    assert matches(c("STR_STARTS_WITH", "TeSt", case_insensitive=True), {"x": "tEST@x"})


def test_str_ends_with__case_sensitive_by_default() -> None:
    assert not matches(c("STR_ENDS_WITH", "@x.com"), {"x": "a@X.COM"})


def test_str_contains__any_of_values__matches() -> None:
    assert matches(c("STR_CONTAINS", "zz", "mid"), {"x": "a-mid-b"})


def test_str_contains_inverted__absent_value__matches() -> None:
    assert matches(c("STR_CONTAINS", "a", inverted=True), {})


# --- NUM_* ---------------------------------------------------------------------------------


def test_num_eq__integer_and_float_text__equal() -> None:
    assert matches(c("NUM_EQ", value="12"), {"x": "12.0"})
    assert matches(c("NUM_EQ", value="12.0"), {"x": 12})


def test_num_gt__unparseable_value__false_and_inverted_true() -> None:
    assert not matches(c("NUM_GT", value="1"), {"x": "12 "})
    assert matches(c("NUM_GT", value="1", inverted=True), {"x": "12 "})


def test_num_lt__nan_context__never_matches() -> None:
    assert not matches(c("NUM_LT", value="1"), {"x": "NaN"})
    assert not matches(c("NUM_GTE", value="1"), {"x": "NaN"})


def test_num_lte__number_attribute__compared_numerically() -> None:
    assert matches(c("NUM_LTE", value="4"), {"x": 3.5})


# --- DATE_* --------------------------------------------------------------------------------


def test_date_after__equal_instant__false_both_ways() -> None:
    at = "2022-01-29T13:00:00.000Z"

    assert not matches(c("DATE_AFTER", value=at), {"x": "2022-01-29T13:00:00Z"})
    assert not matches(c("DATE_BEFORE", value=at), {"x": "2022-01-29T15:00:00+02:00"})


def test_date_before__absent_current_time__uses_now() -> None:
    future = "2999-01-01T00:00:00Z"

    assert matches(ConstraintDef("currentTime", "DATE_BEFORE", value=future), {})
    assert not matches(ConstraintDef("currentTime", "DATE_AFTER", value=future), {})


def test_date_after__absent_other_field__false() -> None:
    assert not matches(c("DATE_AFTER", value="2000-01-01T00:00:00Z"), {})


def test_date_after__unparseable_context__false() -> None:
    assert not matches(c("DATE_AFTER", value="2000-01-01T00:00:00Z"), {"x": "yesterday"})


# --- SEMVER_* ------------------------------------------------------------------------------


def test_semver_gt__prerelease__below_its_release() -> None:
    assert matches(c("SEMVER_GT", value="2.0.0-rc.1"), {"x": "2.0.0"})
    assert not matches(c("SEMVER_GT", value="2.0.0-rc.1"), {"x": "2.0.0-beta.9"})


def test_semver_lte__invalid_context__false_then_inverted_true() -> None:
    assert not matches(c("SEMVER_LTE", value="1.2.3"), {"x": "1.2"})
    assert matches(c("SEMVER_LTE", value="1.2.3", inverted=True), {"x": "1.2"})


def test_semver_eq__value_with_leading_v__false_even_inverted() -> None:
    assert not matches(c("SEMVER_EQ", value="v1.2.3"), {"x": "1.2.3"})
    assert not matches(c("SEMVER_EQ", value="v1.2.3", inverted=True), {"x": "9.9.9"})


# --- REGEX ---------------------------------------------------------------------------------


def test_regex__unanchored__searches_anywhere() -> None:
    assert matches(c("REGEX", value="cat"), {"x": "concatenate"})


def test_regex__re2_syntax__posix_classes_and_mid_pattern_flags() -> None:
    assert matches(c("REGEX", value="^[[:alpha:]]+$"), {"x": "Alpha"})
    assert matches(c("REGEX", value="^(?i)abc$"), {"x": "AbC"})


def test_regex__case_insensitive_flag__applies() -> None:
    assert matches(c("REGEX", value="^abc$", case_insensitive=True), {"x": "ABC"})


@pytest.mark.parametrize("pattern", ["(open", "^(?=a)b$", "^(a)\\1$"])
def test_regex__invalid_pattern__false_and_inverted_true(pattern) -> None:
    assert not matches(c("REGEX", value=pattern), {"x": "aa"})
    assert matches(c("REGEX", value=pattern, inverted=True), {"x": "aa"})


def test_regex__lone_surrogate_value__no_match_not_a_crash() -> None:
    assert not matches(c("REGEX", value="a"), {"x": "a\ud800"})


# --- IN_CIDR -------------------------------------------------------------------------------


def test_in_cidr__ipv4_and_ipv6_ranges_and_bare_hosts() -> None:
    constraint = c("IN_CIDR", "10.0.0.0/8", "2001:db8::/32", "192.168.1.7")

    assert matches(constraint, {"x": "10.2.3.4"})
    assert matches(constraint, {"x": "2001:db8::42"})
    assert matches(constraint, {"x": "192.168.1.7"})
    assert not matches(constraint, {"x": "192.168.1.8"})


def test_in_cidr__invalid_or_padded_entries__skipped() -> None:
    assert not matches(c("IN_CIDR", " 10.0.0.1", "10.invalid"), {"x": "10.0.0.1"})


def test_in_cidr__invalid_context_address__false() -> None:
    assert not matches(c("IN_CIDR", "0.0.0.0/0"), {"x": "localhost"})


# --- the rest ------------------------------------------------------------------------------


def test_unknown_operator__flag_off_even_inverted() -> None:
    assert not matches(c("LIKE", "a", inverted=True), {"x": "b"})
