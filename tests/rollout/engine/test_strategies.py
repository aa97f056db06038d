"""Built-in strategies (docs/bucketing.md)."""

import random
import socket

import pytest

from rollout.engine import FlagDef, RuleDef, build_snapshot, evaluate, rollout_rule
from rollout.engine.hashing import normalized
from tests.rollout.engine.builders import decide


def rule(strategy: str, **parameters: str) -> RuleDef:
    return RuleDef(strategy=strategy, parameters=tuple(parameters.items()))


def on(strategy_rule: RuleDef, context: dict) -> bool:
    return decide(FlagDef("f", rules=(strategy_rule,)), context).enabled


def test_user_with_id__trimmed_list__matches_listed_users_only() -> None:
    users = rule("userWithId", userIds="123, 222 ,88")

    assert on(users, {"targetingKey": "222"})
    assert on(users, {"userId": "88", "targetingKey": "other"})
    assert not on(users, {"targetingKey": "22"})


def test_user_with_id__doubled_comma__empty_user_id_matches() -> None:
    assert on(rule("userWithId", userIds="a,,b"), {"userId": ""})


@pytest.mark.parametrize("strategy", ["gradualRolloutUserId", "gradualRolloutSessionId"])
def test_gradual_rollout__missing_group_id__never(strategy) -> None:
    assert not on(rule(strategy, percentage="100"), {"targetingKey": "u", "sessionId": "s"})


def test_gradual_rollout_session_id__bucket_of_session__decides() -> None:
    gradual = rule("gradualRolloutSessionId", percentage="50", groupId="AB12A")

    assert on(gradual, {"sessionId": "122"})  # bucket 23
    assert not on(gradual, {"sessionId": "155"})  # bucket 100


@pytest.mark.parametrize(("percentage", "expected"), [("0", False), ("100", True)])
def test_gradual_rollout_random__bounds__always_the_same(percentage, expected) -> None:
    flag = FlagDef("f", rules=(rule("gradualRolloutRandom", percentage=percentage),))
    snapshot = build_snapshot(1, "t", [flag])

    answers = {evaluate(snapshot, "f", {}).enabled for _ in range(500)}

    assert answers == {expected}


def test_gradual_rollout_random__30_percent__about_30_percent_of_draws() -> None:
    flag = FlagDef("f", rules=(rule("gradualRolloutRandom", percentage="30"),))
    snapshot = build_snapshot(1, "t", [flag], rng=random.Random(1))

    share = sum(evaluate(snapshot, "f", {}).enabled for _ in range(10_000)) / 10_000

    assert 0.28 < share < 0.32


def test_flexible_rollout__group_id_defaults_to_flag_key() -> None:
    key = "Feature.flexibleRollout.10"
    flag = FlagDef(key, rules=(rule("flexibleRollout", rollout="10"),))

    assert decide(flag, {"targetingKey": "174"}).enabled  # bucket 10: inclusive
    assert not decide(flag, {"targetingKey": "499"}).enabled


def test_flexible_rollout__default_stickiness__falls_back_to_session_id() -> None:
    flexible = rollout_rule("Feature.flexibleRollout.10", 10)

    assert decide(FlagDef("g", rules=(flexible,)), {"sessionId": "174"}).enabled


def test_flexible_rollout__no_id_at_100_percent__on_and_at_0__off() -> None:
    assert on(rollout_rule("f", 100), {})
    assert not on(rollout_rule("f", 0), {"targetingKey": "u"})


def test_flexible_rollout__custom_stickiness_absent__off_even_at_100() -> None:
    assert not on(rollout_rule("f", 100, stickiness="tenant"), {"targetingKey": "u"})
    assert on(rollout_rule("f", 100, stickiness="tenant"), {"tenant": "acme"})


def test_flexible_rollout__user_id_stickiness__ignores_session_id() -> None:
    assert not on(rollout_rule("f", 100, stickiness="userId"), {"sessionId": "s"})


def test_flexible_rollout__custom_stickiness__buckets_that_attribute() -> None:
    flexible = rollout_rule("grp", 50, stickiness="tenant")
    tenants = [f"t{i}" for i in range(200)]

    answers = [on(flexible, {"tenant": t, "targetingKey": "same"}) for t in tenants]

    assert answers == [normalized(t, "grp") <= 50 for t in tenants]


@pytest.mark.parametrize("rollout", ["55.5", " 50", "", "-1"])
def test_flexible_rollout__malformed_percentage__rule_false(rollout) -> None:
    flag = FlagDef("f", rules=(rule("flexibleRollout", rollout=rollout), RuleDef()))

    decision = decide(flag, {"targetingKey": "u"})

    assert decision.enabled  # the second rule answers; the flag is not switched off
    assert decision.reason == "TARGETING_MATCH"


def test_flexible_rollout__above_100__whole_flag_off() -> None:
    flag = FlagDef("f", rules=(rule("flexibleRollout", rollout="101"), RuleDef()))

    decision = decide(flag, {"targetingKey": "u"})

    assert (decision.enabled, decision.reason) == (False, "DISABLED")
    assert "rules[0].parameters.rollout" in (decision.error_message or "")


def test_remote_address__trimmed_list_with_invalid_items__valid_ones_match() -> None:
    addresses = rule("remoteAddress", IPs="10.0.0.1, nonsense ,192.168.0.0/16")

    assert on(addresses, {"remoteAddress": "192.168.4.4"})
    assert on(addresses, {"remoteAddress": "10.0.0.1"})
    assert not on(addresses, {"remoteAddress": "10.0.0.2"})


def test_application_hostname__this_host__case_insensitive() -> None:
    here = socket.gethostname().upper()

    assert on(rule("applicationHostname", hostNames=f"elsewhere, {here}"), {})
    assert not on(rule("applicationHostname", hostNames="elsewhere"), {})


def test_unknown_strategy__never_matches() -> None:
    assert not on(rule("myCustomStrategy", anything="1"), {"targetingKey": "u"})
