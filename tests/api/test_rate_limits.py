"""Rate limits: a runaway client is refused, a fleet sharing one key is not; refusals are
logged in aggregate."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from api import client as client_api
from api.rate_limits import (
    ClientRateLimits,
    RefusalLog,
    TokenBuckets,
    client_address,
    limits_from_settings,
)
from rollout.models import Environment
from rollout.services import flag_create


@pytest.fixture
def flags(environment: Environment, publish: Callable[..., Any]) -> None:
    publish(lambda: flag_create(key="temperature", kind="number", off_value=0.7))


@pytest.fixture
def tight_limits(monkeypatch) -> ClientRateLimits:
    limits = ClientRateLimits(per_key=10_000, per_address=10_000, per_client=1, log_s=3600)
    monkeypatch.setattr(client_api, "rate_limits", limits)
    return limits


def _evaluate(client, key: str, targeting_key: str, remote: str = "127.0.0.1"):
    return client.post(
        "/ofrep/v1/evaluate/flags",
        data={"context": {"targetingKey": targeting_key}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        REMOTE_ADDR=remote,
    )


def test_rate_limit__one_client_over_its_share__429_naming_the_targeting_key(
    client, client_key, flags, tight_limits
) -> None:
    statuses = [_evaluate(client, client_key, "device-1") for _ in range(3)]

    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[2]["Retry-After"].isdigit()
    assert statuses[2].json()["errorCode"] == "RATE_LIMITED"
    assert statuses[2].json()["errorDetails"].startswith("context.targetingKey:")


def test_rate_limit__fleet_on_one_key__no_429(client, client_key, flags, tight_limits) -> None:
    # Every device of an installed app shares the key: 300 devices, two requests each.
    statuses = {
        _evaluate(client, client_key, f"device-{i}").status_code for i in range(300) for _ in (1, 2)
    }

    assert statuses == {200}


def test_rate_limit__same_targeting_key_other_address__own_bucket(
    client, client_key, flags, tight_limits
) -> None:
    for _ in range(2):
        assert _evaluate(client, client_key, "shared", remote="10.0.0.1").status_code == 200
    assert _evaluate(client, client_key, "shared", remote="10.0.0.1").status_code == 429
    assert _evaluate(client, client_key, "shared", remote="10.0.0.2").status_code == 200


def test_rate_limit__address_ceiling__429_for_that_address_only(
    client, client_key, flags, monkeypatch
) -> None:
    limits = ClientRateLimits(per_key=10_000, per_address=1, per_client=10_000, log_s=3600)
    monkeypatch.setattr(client_api, "rate_limits", limits)
    got = [_evaluate(client, client_key, f"d{i}", remote="10.0.0.9").status_code for i in range(3)]

    assert got == [200, 200, 429]
    assert _evaluate(client, client_key, "d9", remote="10.0.0.8").status_code == 200


def test_rate_limit__refusals__one_summary_line_per_interval(
    client, client_key, flags, monkeypatch, caplog
) -> None:
    limits = ClientRateLimits(per_key=10_000, per_address=10_000, per_client=1, log_s=0)
    monkeypatch.setattr(client_api, "rate_limits", limits)
    limits.refusals = RefusalLog(interval_s=3600)
    caplog.set_level(logging.WARNING)

    statuses = [_evaluate(client, client_key, "loop").status_code for _ in range(50)]

    assert statuses.count(429) == 48
    # Django's per-request "Too Many Requests" warning is not written for any of them.
    assert not [r for r in caplog.records if r.name == "django.request"]
    assert limits.refusals._counts["client"] == 48


def test_refusal_log__interval_over__one_line_with_the_counts(caplog) -> None:
    log = RefusalLog(interval_s=0)
    caplog.set_level(logging.WARNING, logger="api.rate_limits")

    log.record("client")

    [line] = [r.getMessage() for r in caplog.records if r.name == "api.rate_limits"]
    assert "rate limited 1 client API request(s)" in line
    assert "client: 1" in line


def test_token_buckets__idle_buckets__forgotten() -> None:
    buckets = TokenBuckets(rate_per_s=10, burst=20)
    for i in range(1000):
        assert buckets.retry_after(f"k{i}", now=100.0) == 0
    assert len(buckets) == 1000

    buckets.retry_after("later", now=103.0)  # 2 s of refill fills every bucket again

    assert len(buckets) == 1


def test_token_buckets__refill__rate_per_second() -> None:
    buckets = TokenBuckets(rate_per_s=2, burst=2)
    assert [buckets.retry_after("k", now=0.0) for _ in range(3)] == [0, 0, 1]
    assert buckets.retry_after("k", now=0.5) == 0


@pytest.mark.parametrize(
    ("proxies", "forwarded", "remote", "expected"),
    [
        (0, "6.6.6.6", "10.1.1.1", "10.1.1.1"),  # no proxy: the header is the client's claim
        (1, "6.6.6.6, 203.0.113.7", "10.1.1.1", "203.0.113.7"),  # the proxy's own entry
        (2, "203.0.113.7, 10.0.0.2", "10.1.1.1", "203.0.113.7"),
        (1, "", "10.1.1.1", "10.1.1.1"),
    ],
)
def test_client_address__trusted_proxies(rf, settings, proxies, forwarded, remote, expected):
    settings.EDGEFLAGS_NUM_PROXIES = proxies
    request = rf.get("/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR=remote)

    assert client_address(request) == expected


def test_rate_limits__shipped_defaults__fleet_at_budget_throughput_never_refused() -> None:
    # One process taking the whole budget (4,800 evaluate requests/s, docs/budgets.md) for 5 s,
    # every request from one address (a carrier NAT, or wrk on loopback) with a new
    # targeting key: nothing is refused.
    limits = limits_from_settings()
    refused = []
    for tick in range(5 * 4800):
        now = 1000.0 + tick / 4800
        for check in (
            limits.check_caller(1, "203.0.113.7", now),
            limits.check_client(1, "203.0.113.7", f"device-{tick}", now),
        ):
            if check is not None:
                refused.append(check)
    assert refused == []


def test_rate_limits__shipped_defaults__one_client_in_a_loop_refused() -> None:
    limits = limits_from_settings()
    answers = [
        limits.check_client(1, "203.0.113.7", "stuck-device", 1000.0 + i / 1000) for i in range(500)
    ]

    refused = [a for a in answers if a is not None]
    assert refused
    assert {what for what, _ in refused} == {"client"}
