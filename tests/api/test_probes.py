"""POST /api/v1/probes; erasure by POST /api/v1/privacy/erase and DELETE /api/v1/probes/{id}.

Profiles are private: a probe's answer carries only that probe, receipts belong to one
client's probe, and a key of one environment can neither read, overwrite nor erase another
environment's profiles. Run on PostgreSQL + Redis (the strings below are what PostgreSQL
refuses and SQLite takes).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.core.management import call_command

from capability_probe.models import ClientProfile, ProbeReceipt
from capability_probe.services import client_hash, profile_attributes
from capability_probe.vocabulary import SAVE_DATA_IDENTITY, SAVE_DATA_SEGMENT
from rollout.models import AuditEntry
from tests.support.demo import load_demo

pytestmark = pytest.mark.django_db

PROBE = {
    "probeId": "probe-0001",
    "clientId": "device-42",
    "consent": True,
    "device": {"memoryGb": 8, "cores": 8, "webgpu": True, "shaderF16": True, "charging": True},
    "network": {"effectiveType": "4g", "rttMs": 40, "downlinkMbps": 10, "saveData": False},
    "platform": {"os": "macOS", "browser": "Chrome", "appVersion": "3.4.0"},
    "benchmark": {"ms": 18.5, "workload": "matmul-f32-64x64-v1"},
}


@pytest.fixture(autouse=True)
def _own_profile_secret(settings) -> None:
    """A fresh hashing secret per test: profiles cached in Redis by an earlier run (whose
    test database handed out the same environment ids) can never answer for this one."""
    settings.EDGEFLAGS_PROFILE_SECRET = f"test-{uuid.uuid4()}"


@pytest.fixture
def demo(publish) -> None:
    load_demo(publish)


def _client_key(publish, scope: str = "client", environment_key: str = "production") -> str:
    from access.api_keys import api_key_create
    from rollout.models import Environment

    environment = Environment.objects.get(key=environment_key)
    return publish(lambda: api_key_create(environment=environment, scope=scope, name="t"))[1]


def _environment_id(key: str = "production") -> int:
    from rollout.models import Environment

    return int(Environment.objects.get(key=key).pk)


@pytest.fixture
def two_environments(publish) -> dict[str, dict[str, str]]:
    """production and staging, each with a client and a server key (no demo data: quick)."""
    from rollout.services import environment_create

    for key in ("production", "staging"):
        publish(lambda key=key: environment_create(key=key))
    return {
        key: {scope: _client_key(publish, scope, key) for scope in ("client", "server")}
        for key in ("production", "staging")
    }


def _profile(environment: str, client_id: str = "device-42") -> ClientProfile | None:
    return ClientProfile.objects.filter(
        environment_id=_environment_id(environment), client_hash=client_hash(client_id)
    ).first()


def _without_decisions(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "decisions"}


def test_probe__valid__segment_profile_and_decisions_returned(api, demo, publish) -> None:
    key = _client_key(publish)

    response = api("POST", "/api/v1/probes", key, PROBE)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["stored"] is True
    assert body["segment"]["key"].startswith("fast-computers-webgpu")  # WebGPU, 18 ms, a fast link
    assert body["segment"]["label"]
    assert "smart-compose" in body["decisions"]["flags"]
    assert body["profile"]["memoryGb"] == 8.0
    profile = ClientProfile.objects.get(client_hash=client_hash("device-42"))
    assert profile.environment_id == _environment_id("production")
    assert "device-42" not in str(profile.__dict__)
    assert profile.benchmark_ms == 18.5
    assert profile.runtime == {"charging": True}


def test_probe__same_probe_id_twice__stored_once(api, two_environments) -> None:
    key = two_environments["production"]["client"]

    api("POST", "/api/v1/probes", key, PROBE)
    again = api("POST", "/api/v1/probes", key, PROBE)

    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert ClientProfile.objects.get(client_hash=client_hash("device-42")).probe_count == 1
    assert ProbeReceipt.objects.count() == 1


def test_probe__new_probe__replaces_profile_and_keeps_history(api, two_environments) -> None:
    key = two_environments["production"]["client"]
    api("POST", "/api/v1/probes", key, PROBE)

    slower = {**PROBE, "probeId": "probe-0002", "device": {"cores": 4}}
    api("POST", "/api/v1/probes", key, slower)

    profile = ClientProfile.objects.get(client_hash=client_hash("device-42"))
    assert profile.cores == 4
    assert profile.memory_gb is None  # not reported now: missing, not stale
    assert len(profile.history) == 2


def test_probe__bad_probe__400_naming_field_and_nothing_stored(api, two_environments) -> None:
    key = two_environments["production"]["client"]
    bad = {**PROBE, "network": {"rttMs": "fast"}}

    response = api("POST", "/api/v1/probes", key, bad)

    assert response.status_code == 400
    assert response.json()["errorDetails"].startswith("network.rttMs:")
    assert not ClientProfile.objects.filter(client_hash=client_hash("device-42")).exists()
    assert not ProbeReceipt.objects.exists()


def test_probe__no_consent__answered_not_stored(api, two_environments) -> None:
    key = two_environments["production"]["client"]

    response = api("POST", "/api/v1/probes", key, {**PROBE, "consent": False})

    assert response.status_code == 200
    assert response.json()["stored"] is False
    assert not ClientProfile.objects.filter(client_hash=client_hash("device-42")).exists()


@pytest.mark.parametrize("state", ["pending", "denied", False])
def test_probe__consent_not_granted__answered_nothing_stored(api, two_environments, state) -> None:
    key = two_environments["production"]["client"]

    response = api("POST", "/api/v1/probes", key, {**PROBE, "consent": state})

    assert response.status_code == 200, response.content
    assert response.json()["consent"] == ("denied" if state is False else state)
    assert response.json()["stored"] is False
    assert not ClientProfile.objects.exists()
    assert not ProbeReceipt.objects.exists()


def test_probe__consent_granted_then_pending_then_denied__kept_then_forgotten(
    api, two_environments
) -> None:
    """pending stores nothing and forgets nothing; denied forgets what was stored, as an
    erasure does (audited without naming the client), in the key's environment only."""
    production = two_environments["production"]["client"]
    staging = two_environments["staging"]["client"]
    environment_id = _environment_id()
    granted = api("POST", "/api/v1/probes", production, {**PROBE, "consent": "granted"})
    api("POST", "/api/v1/probes", staging, PROBE)

    pending = api(
        "POST", "/api/v1/probes", production, {**PROBE, "probeId": "p-2", "consent": "pending"}
    )
    after_pending = _profile("production")
    denied = api(
        "POST", "/api/v1/probes", production, {**PROBE, "probeId": "p-3", "consent": "denied"}
    )

    assert granted.json()["stored"] is True
    assert pending.json()["stored"] is False
    assert after_pending is not None
    assert after_pending.probe_count == 1
    assert denied.status_code == 200, denied.content
    assert denied.json()["stored"] is False
    assert _profile("production") is None
    assert profile_attributes(environment_id=environment_id, client_id="device-42") is None
    assert not ProbeReceipt.objects.filter(environment_id=environment_id).exists()
    assert _profile("staging") is not None  # another environment's consent is its own
    entry = AuditEntry.objects.get(action="client.erase")
    assert (entry.reason, entry.after, entry.environment) == (
        "consent denied",
        {"erased": True},
        "production",
    )


def test_probe__consent_denied_by_an_unsigned_identity__forgets_nobody(
    api, two_environments, publish
) -> None:
    """Where signed identities are required, an unsigned probe can neither store nor erase:
    a script holding the public key cannot wipe a victim's profile by claiming its id."""
    from capability_probe.schema import parse_probe
    from capability_probe.services import probe_record
    from rollout.models import Environment

    environment = Environment.objects.get(key="production")
    probe_record(probe=parse_probe(PROBE), environment_id=environment.pk)
    publish(
        lambda: Environment.objects.filter(pk=environment.pk).update(require_signed_identities=True)
    )
    from rollout.snapshots.store import store

    store.reset()

    response = api(
        "POST",
        "/api/v1/probes",
        two_environments["production"]["client"],
        {**PROBE, "probeId": "p-9", "consent": "denied"},
    )

    assert response.status_code == 200, response.content
    assert _profile("production") is not None
    assert not AuditEntry.objects.filter(action="client.erase").exists()


def test_probe__save_data__save_data_segment(api, demo, publish) -> None:
    key = _client_key(publish)
    probe = {**PROBE, "network": {**PROBE["network"], "saveData": True}}

    body = api("POST", "/api/v1/probes", key, probe).json()

    assert body["segment"]["key"] == "save-data"
    assert (
        ClientProfile.objects.get(client_hash=client_hash("device-42")).segment_identity
        == SAVE_DATA_IDENTITY
    )


def test_erase__client_id_with_a_line_break__404_json(api, two_environments) -> None:
    # Found by schemathesis: the route cannot hold a line break, so this is no route; the
    # document now lists the 404 the server answers.
    response = api("DELETE", "/api/v1/probes/a%0Ab", two_environments["production"]["server"])

    assert response.status_code == 404
    assert response.json()["errorCode"] == "NOT_FOUND"


def test_erase__server_key__profile_gone(api, two_environments) -> None:
    key = two_environments["production"]["client"]
    server_key = two_environments["production"]["server"]
    api("POST", "/api/v1/probes", key, PROBE)

    client_key_attempt = api("DELETE", "/api/v1/probes/device-42", key)
    response = api("DELETE", "/api/v1/probes/device-42", server_key)

    assert client_key_attempt.status_code == 403
    assert response.json() == {"erased": True}
    assert not ClientProfile.objects.filter(client_hash=client_hash("device-42")).exists()
    assert not ProbeReceipt.objects.exists()
    entry = AuditEntry.objects.get(action="client.erase")
    assert (entry.environment, entry.after["erased"]) == ("production", True)
    # The entry says an erasure happened, not whom it was for (not even a hash prefix).
    assert entry.after == {"erased": True}
    assert "device-42" not in str(entry.after) + entry.actor_name


ERASE = "/api/v1/privacy/erase"
UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    }
}


def test_privacy_erase__server_key__profile_receipts_and_cached_copy_gone(
    api, two_environments, caplog
) -> None:
    key = two_environments["production"]["client"]
    server_key = two_environments["production"]["server"]
    api("POST", "/api/v1/probes", key, PROBE)
    environment_id = _environment_id()
    before = profile_attributes(environment_id=environment_id, client_id="device-42")

    client_key_attempt = api("POST", ERASE, key, {"clientId": "device-42"})
    response = api("POST", ERASE, server_key, {"clientId": "device-42"})
    again = api("POST", ERASE, server_key, {"clientId": "device-42"})
    after = profile_attributes(environment_id=environment_id, client_id="device-42")

    assert client_key_attempt.status_code == 403
    assert (response.status_code, response.json()) == (200, {"erased": True})
    assert again.json() == {"erased": False}
    assert not ClientProfile.objects.filter(client_hash=client_hash("device-42")).exists()
    assert not ProbeReceipt.objects.exists()
    # The cached copy evaluation reads (the cache answers first) is gone with the row.
    assert before is not None
    assert before["memoryGb"] == 8
    assert after is None
    entries = AuditEntry.objects.filter(action="client.erase").order_by("pk")
    assert [e.after for e in entries] == [{"erased": True}, {"erased": False}]
    assert "device-42" not in "".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "clientId"),
        ({"clientId": ""}, "clientId"),
        ({"clientId": 42}, "clientId"),
        ({"clientId": ["device-42"]}, "clientId"),
        ({"clientId": "device\x0042"}, "clientId"),
        ({"clientId": "x" * 513}, "clientId"),
        ({"clientId": "device-42", "environment": "staging"}, "environment"),
    ],
)
def test_privacy_erase__bad_body__400_naming_the_field_nothing_erased(
    api, two_environments, caplog, body, field
) -> None:
    api("POST", "/api/v1/probes", two_environments["production"]["client"], PROBE)

    response = api("POST", ERASE, two_environments["production"]["server"], body)

    assert response.status_code == 400, response.content
    assert response.json()["errorDetails"].startswith(f"{field}:"), response.json()
    assert ClientProfile.objects.filter(client_hash=client_hash("device-42")).exists()
    assert not AuditEntry.objects.filter(action="client.erase").exists()
    assert "device-42" not in "".join(r.getMessage() for r in caplog.records)


def test_privacy_erase__cache_unreachable__503_nothing_erased_then_done(
    api, two_environments
) -> None:
    """A cached copy would be served again once the cache is back, so an erasure that cannot
    reach the cache is not done: 503, and the rows stay until the request is sent again."""
    from django.test import override_settings

    server_key = two_environments["production"]["server"]
    api("POST", "/api/v1/probes", two_environments["production"]["client"], PROBE)

    with override_settings(CACHES=UNREACHABLE_REDIS):
        refused = api("POST", ERASE, server_key, {"clientId": "device-42"})
    kept = (ClientProfile.objects.count(), ProbeReceipt.objects.count())
    retried = api("POST", ERASE, server_key, {"clientId": "device-42"})

    assert refused.status_code == 503, refused.content
    assert refused.json()["errorDetails"].startswith("cache: unreachable")
    assert "nothing was erased" in refused.json()["errorDetails"]
    assert kept == (1, 1)
    assert retried.json() == {"erased": True}
    assert not ClientProfile.objects.exists()
    assert [e.after for e in AuditEntry.objects.filter(action="client.erase")] == [{"erased": True}]


def test_erase_client_command__profiles_in_two_environments__all_erased() -> None:
    from io import StringIO

    from capability_probe.schema import parse_probe
    from capability_probe.services import probe_record

    for environment_id in (1, 2):
        probe_record(probe=parse_probe(PROBE), environment_id=environment_id)
    out = StringIO()

    call_command("erase_client", "device-42", stdout=out)

    assert "Erased" in out.getvalue()
    assert not ClientProfile.objects.exists()
    entry = AuditEntry.objects.get(action="client.erase")
    assert entry.actor_name.startswith("cli:")
    assert "device-42" not in str(entry.after)


def test_purge__old_profiles__deleted() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from capability_probe.schema import parse_probe
    from capability_probe.services import probe_record, probes_purge_expired

    probe_record(probe=parse_probe(PROBE), environment_id=1)
    ClientProfile.objects.update(received_at=timezone.now() - timedelta(days=91))
    ProbeReceipt.objects.update(received_at=timezone.now() - timedelta(days=91))

    purged = probes_purge_expired()

    assert purged == {"profiles": 1, "receipts": 1}


def test_evaluate__after_probe__stored_profile_gives_segment_to_rules(api, demo, publish) -> None:
    from rollout.models import FlagState
    from rollout.services import flag_create, flag_state_update, rule_create

    key = _client_key(publish)
    segment = api("POST", "/api/v1/probes", key, PROBE).json()["segment"]["key"]

    def gate_on_segment() -> None:
        flag_create(key="on-device-summary")
        state = FlagState.objects.get(flag__key="on-device-summary", environment__key="production")
        flag_state_update(state=state, enabled=True)
        rule_create(
            state=state,
            constraints=[{"contextName": "segment", "operator": "IN", "values": [segment]}],
        )

    publish(gate_on_segment)
    known = {"context": {"targetingKey": "device-42"}, "flags": ["on-device-summary"]}
    spoofed = {
        "context": {"targetingKey": "someone-else", "segment": segment},
        "flags": ["on-device-summary"],
    }

    assert (
        api("POST", "/api/v1/evaluate", key, known).json()["flags"]["on-device-summary"]["value"]
        is True
    )
    assert (
        api("POST", "/api/v1/evaluate", key, spoofed).json()["flags"]["on-device-summary"]["value"]
        is False
    )


def _smart_compose(api, key: str, context: dict[str, Any]) -> dict[str, Any]:
    body = {"context": {"targetingKey": "device-42", **context}, "flags": ["smart-compose"]}
    return api("POST", "/api/v1/evaluate", key, body).json()["flags"]["smart-compose"]


def test_evaluate__stored_high_end_profile_and_only_save_data_off__edge_from_the_profile(
    api, demo, publish
) -> None:
    # saveData is a runtime hint, not capability: a context carrying only hints brings no
    # capability inline, so the stored profile (8 GB, WebGPU, 18.5 ms) still decides.
    key = _client_key(publish)
    api("POST", "/api/v1/probes", key, PROBE)

    decision = _smart_compose(api, key, {"saveData": False})

    assert decision["variant"] == "edge", decision
    assert decision["metadata"]["segment"].startswith("fast-computers-webgpu")
    assert _smart_compose(api, key, {}) == decision  # as without the hint


def test_evaluate__stored_high_end_profile_and_save_data_on__the_hint_wins(
    api, demo, publish
) -> None:
    key = _client_key(publish)
    api("POST", "/api/v1/probes", key, PROBE)

    decision = _smart_compose(api, key, {"saveData": True})

    assert decision["metadata"]["segment"] == SAVE_DATA_SEGMENT
    assert decision["variant"] == "lite", decision
    assert decision["unmet"]["edge"][0] == "saveData is on"


def test_evaluate__stored_high_end_profile_and_capability_inline__the_inline_context_decides(
    api, demo, publish
) -> None:
    key = _client_key(publish)
    api("POST", "/api/v1/probes", key, PROBE)

    decision = _smart_compose(api, key, {"memoryGb": 2, "saveData": False})

    assert decision["variant"] != "edge"
    assert "memoryGb ≥ 4" in decision["unmet"]["edge"]


# --- privacy: replays, membership, environments ----------------------------------------


def test_probe__replayed_probe_id_with_victims_client_id__answers_only_what_it_sent(
    api, two_environments
) -> None:
    # Given a victim's probe stored in production, and its probe id and client id known
    key = two_environments["production"]["client"]
    assert api("POST", "/api/v1/probes", key, PROBE).json()["stored"] is True

    # When an attacker replays them with nothing of its own, and sends a never-seen id for
    # a client id that has no profile
    replay = api("POST", "/api/v1/probes", key, {"probeId": "probe-0001", "clientId": "device-42"})
    unseen = api("POST", "/api/v1/probes", key, {"probeId": "probe-9999", "clientId": "nobody-7"})

    # Then neither answer carries anything the victim sent, and the two cannot be told apart
    assert replay.status_code == unseen.status_code == 200
    for leaked in (b"macOS", b"Chrome", b"3.4.0", b"18.5", b"memoryGb"):
        assert leaked not in replay.content
    assert replay.json()["profile"] == {}
    assert _without_decisions(replay.json()) == _without_decisions(unseen.json())


def test_probe__same_probe_id_from_two_clients__each_stored_with_its_own_receipt(
    api, two_environments
) -> None:
    key = two_environments["production"]["client"]

    first = api("POST", "/api/v1/probes", key, PROBE).json()
    second = api("POST", "/api/v1/probes", key, {**PROBE, "clientId": "device-43"}).json()

    assert first["stored"] is second["stored"] is True
    assert second["duplicate"] is False
    assert _profile("production", "device-43") is not None
    assert ProbeReceipt.objects.count() == 2


def test_probe__retry_of_one_probe__duplicate_answers_that_probe_only(
    api, two_environments
) -> None:
    key = two_environments["production"]["client"]
    first = api("POST", "/api/v1/probes", key, PROBE).json()
    # a later probe changes the stored profile; then the first one arrives again
    api("POST", "/api/v1/probes", key, {**PROBE, "probeId": "probe-0002", "device": {"cores": 2}})

    retry = api("POST", "/api/v1/probes", key, PROBE).json()

    assert retry["duplicate"] is True
    assert retry["profile"] == first["profile"]  # what it sent, not the stored (2-core) row
    assert _profile("production").cores == 2


BOTH_WAYS = [("staging", "production"), ("production", "staging")]


@pytest.mark.parametrize(("writer", "owner"), BOTH_WAYS)
def test_probe__other_environments_key__cannot_overwrite_or_erase_profile(
    api, two_environments, writer, owner
) -> None:
    # Given a profile stored through one environment's key
    api("POST", "/api/v1/probes", two_environments[owner]["client"], PROBE)

    # When the other environment's keys probe for the same client and erase it
    other = {**PROBE, "probeId": "probe-0002", "device": {"cores": 2}, "platform": {}}
    written = api("POST", "/api/v1/probes", two_environments[writer]["client"], other)
    erased = api("DELETE", "/api/v1/probes/device-42", two_environments[writer]["server"])

    # Then the owner's profile is as it stored it; the other environment's write and erasure
    # concerned its own row only
    assert written.json()["stored"] is True
    assert erased.json() == {"erased": True}
    assert _profile(writer) is None
    profile = _profile(owner)
    assert profile is not None
    assert (profile.cores, profile.os, profile.probe_count) == (8, "macOS", 1)
    assert ProbeReceipt.objects.filter(environment_id=_environment_id(owner)).count() == 1


def test_erase__own_environments_server_key__only_that_environments_profile_gone(
    api, two_environments
) -> None:
    for environment in ("production", "staging"):
        api("POST", "/api/v1/probes", two_environments[environment]["client"], PROBE)

    response = api("DELETE", "/api/v1/probes/device-42", two_environments["staging"]["server"])
    again = api("DELETE", "/api/v1/probes/device-42", two_environments["staging"]["server"])

    assert response.json() == {"erased": True}
    assert again.json() == {"erased": False}
    assert _profile("staging") is None
    assert _profile("production") is not None


@pytest.mark.parametrize(("reader", "owner"), BOTH_WAYS)
def test_evaluate__other_environments_key__does_not_read_stored_profile(
    api, demo, publish, reader, owner
) -> None:
    from rollout.models import FlagState
    from rollout.services import flag_create, flag_state_update, rule_create

    owner_key = _client_key(publish, environment_key=owner)
    reader_key = _client_key(publish, environment_key=reader)
    segment = api("POST", "/api/v1/probes", owner_key, PROBE).json()["segment"]["key"]
    assert segment

    def gate_on_segment() -> None:
        flag_create(key="on-device-summary")
        for environment in ("production", "staging"):
            state = FlagState.objects.get(
                flag__key="on-device-summary", environment__key=environment
            )
            flag_state_update(state=state, enabled=True)
            rule_create(
                state=state,
                constraints=[{"contextName": "segment", "operator": "IN", "values": [segment]}],
            )

    publish(gate_on_segment)
    body = {"context": {"targetingKey": "device-42"}, "flags": ["on-device-summary"]}

    def value(key: str) -> Any:
        return api("POST", "/api/v1/evaluate", key, body).json()["flags"]["on-device-summary"][
            "value"
        ]

    assert value(owner_key) is True
    assert value(reader_key) is False


def test_evaluate__stored_profile_in_cache__no_database_query(
    api, demo, publish, django_assert_num_queries
) -> None:
    key = _client_key(publish)
    api("POST", "/api/v1/probes", key, PROBE)
    known = {"context": {"targetingKey": "device-42"}}
    first = api("POST", "/api/v1/evaluate", key, known).json()  # loads snapshot and env id

    with django_assert_num_queries(0):
        again = api("POST", "/api/v1/evaluate", key, known).json()

    assert again["flags"] == first["flags"]
    assert any(f["metadata"].get("segment") for f in again["flags"].values())


# --- strings the database refuses ------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"clientId": "device\u000042"}, "clientId"),
        ({"platform": {"os": "mac\u0000OS"}}, "platform.os"),
        ({"platform": {"appVersion": "3.4\u001b[0m"}}, "platform.appVersion"),
        ({"benchmark": {"ms": 12, "workload": "matmul\u0000"}}, "benchmark.workload"),
        ({"device": {"memory\u0000Gb": 8}}, "device.memory?Gb"),
    ],
)
def test_probe__control_character_anywhere__400_naming_field_nothing_stored(
    api, two_environments, change, field
) -> None:
    body = {**PROBE, **change}  # json.dumps sends it escaped, as a client would

    response = api("POST", "/api/v1/probes", two_environments["production"]["client"], body)

    assert response.status_code == 400, response.content
    assert response.json()["errorDetails"].startswith(f"{field}:")
    assert not ClientProfile.objects.exists()
    assert not ProbeReceipt.objects.exists()


def test_probe__lone_surrogate__400_nothing_stored(api, two_environments) -> None:
    body = json.dumps({**PROBE, "platform": {"os": "@"}}).replace('"@"', '"\\ud800"')

    response = api("POST", "/api/v1/probes", two_environments["production"]["client"], body)

    assert response.status_code == 400
    assert not ClientProfile.objects.exists()


def test_erase__nul_in_client_id__400_naming_field(api, two_environments) -> None:
    response = api("DELETE", "/api/v1/probes/device%0042", two_environments["production"]["server"])

    assert response.status_code == 400
    assert response.json()["errorDetails"].startswith("clientId:")


def test_probe_record__value_the_database_refuses__probe_invalid_nothing_written() -> None:
    from dataclasses import replace

    from capability_probe.schema import ProbeInvalid, parse_probe
    from capability_probe.services import probe_record

    # past the schema (which refuses it), as a future field might slip one through
    probe = replace(parse_probe(PROBE), profile={"os": "mac\x00OS"})

    with pytest.raises(ProbeInvalid, match=r"^probe: "):
        probe_record(probe=probe, environment_id=1)

    assert not ClientProfile.objects.exists()
    assert not ProbeReceipt.objects.exists()


def test_probe_record__store_false__answered_nothing_kept() -> None:
    from capability_probe.schema import parse_probe
    from capability_probe.services import probe_record

    outcome = probe_record(probe=parse_probe(PROBE), environment_id=1, store=False)

    assert (outcome.stored, outcome.attributes["os"]) == (False, "macOS")
    assert not ClientProfile.objects.exists()
    assert not ProbeReceipt.objects.exists()


@pytest.fixture
def signed_production(two_environments, publish) -> str:
    """production requires signed identities; returns its identity secret."""
    from django.contrib.auth.models import User

    from access.signed_identities import (
        environment_identity_secret_rotate,
        environment_signed_identities_require,
    )
    from rollout.audit import Actor
    from rollout.models import Environment

    root = Actor.of(User.objects.create_superuser("root", "r@example.com", "pw-for-tests-only"))
    production = Environment.objects.get(key="production")
    secret = publish(lambda: environment_identity_secret_rotate(environment=production, actor=root))
    publish(
        lambda: environment_signed_identities_require(
            environment=production, required=True, actor=root
        )
    )
    return secret


def test_probe__signed_identities_required_unsigned__answered_not_stored(
    api, two_environments, signed_production
) -> None:
    key = two_environments["production"]["client"]

    unsigned = api("POST", "/api/v1/probes", key, PROBE)
    forged = api("POST", "/api/v1/probes", key, {**PROBE, "identityHash": "ab" * 32})

    assert (unsigned.status_code, unsigned.json()["stored"]) == (200, False)
    assert (forged.status_code, forged.json()["stored"]) == (200, False)
    assert _profile("production") is None


def test_probe__signed_identities_required_signed__stored(
    api, two_environments, signed_production
) -> None:
    from access.decision_tokens import identity_hash

    key = two_environments["production"]["client"]
    signed = {**PROBE, "identityHash": identity_hash(signed_production, "device-42")}

    response = api("POST", "/api/v1/probes", key, signed)

    assert (response.status_code, response.json()["stored"]) == (200, True)
    assert _profile("production") is not None


def test_probe__identity_hash_not_hex__400_naming_it(api, two_environments) -> None:
    key = two_environments["production"]["client"]

    response = api("POST", "/api/v1/probes", key, {**PROBE, "identityHash": "nope"})

    assert response.status_code == 400
    assert response.json()["errorDetails"].startswith("identityHash:")


def test_erase_client_command__cache_unreachable__error_nothing_erased() -> None:
    from django.core.management.base import CommandError
    from django.test import override_settings

    from capability_probe.schema import parse_probe
    from capability_probe.services import probe_record

    probe_record(probe=parse_probe(PROBE), environment_id=1)

    with override_settings(CACHES=UNREACHABLE_REDIS), pytest.raises(CommandError) as refused:
        call_command("erase_client", "device-42")

    assert "cache: unreachable" in str(refused.value)
    assert "nothing was erased" in str(refused.value)
    assert ClientProfile.objects.count() == 1
    assert not AuditEntry.objects.filter(action="client.erase").exists()


def test_privacy_notice__every_field_and_event_type_and_the_retention_settings(
    api, two_environments, settings
) -> None:
    from capability_probe.vocabulary import FIELDS
    from telemetry.schema import EVENT_TYPES

    settings.EDGEFLAGS_PROBE_RETENTION_DAYS = 30
    response = api("GET", "/api/v1/privacy", two_environments["staging"]["client"])
    no_key = api("GET", "/api/v1/privacy", None)

    assert response.status_code == 200, response.content
    notice = response.json()
    assert notice["environment"] == "staging"
    probe_fields = {f["name"] for f in notice["collected"]["probe"]}
    assert probe_fields == {f"{f.section.value}.{f.probe_key}" for f in FIELDS}
    assert all(f["purpose"] for f in notice["collected"]["probe"])
    assert [e["type"] for e in notice["collected"]["events"]] == list(EVENT_TYPES)
    retention = {r["setting"]: r["days"] for r in notice["retention"] if r["setting"]}
    assert retention["EDGEFLAGS_PROBE_RETENTION_DAYS"] == 30
    assert retention["EDGEFLAGS_METRIC_RETENTION_DAYS"] == settings.EDGEFLAGS_METRIC_RETENTION_DAYS
    assert [c["state"] for c in notice["consent"]["states"]] == ["granted", "denied", "pending"]
    assert "HMAC" in notice["identity"]["keptAs"]
    assert no_key.status_code == 401
