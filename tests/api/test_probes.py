"""POST /api/v1/probes and DELETE /api/v1/probes/{clientId}."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from capability_probe.models import ClientProfile, ProbeReceipt
from capability_probe.services import client_hash

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


@pytest.fixture
def demo(publish) -> None:
    publish(lambda: call_command("load_demo", verbosity=0))


def _client_key(publish, scope: str = "client") -> str:
    from rollout.models import Environment
    from rollout.services import api_key_create

    environment = Environment.objects.get(key="production")
    return publish(lambda: api_key_create(environment=environment, scope=scope, name="t"))[1]


def test_probe__valid__segment_profile_and_decisions_returned(api, demo, publish) -> None:
    key = _client_key(publish)

    response = api("POST", "/api/v1/probes", key, PROBE)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["stored"] is True
    assert body["segment"]["key"].startswith("edge-ready")  # 8 GB, WebGPU, 18 ms
    assert body["segment"]["label"]
    assert "smart-compose" in body["decisions"]["flags"]
    assert body["profile"]["memoryGb"] == 8.0
    profile = ClientProfile.objects.get(client_hash=client_hash("device-42"))
    assert profile.client_hash == client_hash("device-42")
    assert "device-42" not in str(profile.__dict__)
    assert profile.benchmark_ms == 18.5
    assert profile.runtime == {"charging": True}


def test_probe__same_probe_id_twice__stored_once(api, demo, publish) -> None:
    key = _client_key(publish)

    api("POST", "/api/v1/probes", key, PROBE)
    again = api("POST", "/api/v1/probes", key, PROBE)

    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert ClientProfile.objects.get(client_hash=client_hash("device-42")).probe_count == 1
    assert ProbeReceipt.objects.count() == 1


def test_probe__new_probe__replaces_profile_and_keeps_history(api, demo, publish) -> None:
    key = _client_key(publish)
    api("POST", "/api/v1/probes", key, PROBE)

    slower = {**PROBE, "probeId": "probe-0002", "device": {"cores": 4}}
    api("POST", "/api/v1/probes", key, slower)

    profile = ClientProfile.objects.get(client_hash=client_hash("device-42"))
    assert profile.cores == 4
    assert profile.memory_gb is None  # not reported now: missing, not stale
    assert len(profile.history) == 2


def test_probe__bad_probe__400_naming_field_and_nothing_stored(api, demo, publish) -> None:
    key = _client_key(publish)
    bad = {**PROBE, "network": {"rttMs": "fast"}}

    response = api("POST", "/api/v1/probes", key, bad)

    assert response.status_code == 400
    assert response.json()["errorDetails"].startswith("network.rttMs:")
    assert not ClientProfile.objects.filter(client_hash=client_hash("device-42")).exists()
    assert not ProbeReceipt.objects.exists()


def test_probe__no_consent__answered_not_stored(api, demo, publish) -> None:
    key = _client_key(publish)

    response = api("POST", "/api/v1/probes", key, {**PROBE, "consent": False})

    assert response.status_code == 200
    assert response.json()["stored"] is False
    assert not ClientProfile.objects.filter(client_hash=client_hash("device-42")).exists()


def test_probe__save_data__save_data_segment(api, demo, publish) -> None:
    key = _client_key(publish)
    probe = {**PROBE, "network": {**PROBE["network"], "saveData": True}}

    body = api("POST", "/api/v1/probes", key, probe).json()

    assert body["segment"]["key"] == "save-data"
    assert (
        ClientProfile.objects.get(client_hash=client_hash("device-42")).segment_key == "save-data"
    )


def test_erase__server_key__profile_gone(api, demo, publish) -> None:
    key = _client_key(publish)
    server_key = _client_key(publish, "server")
    api("POST", "/api/v1/probes", key, PROBE)

    client_key_attempt = api("DELETE", "/api/v1/probes/device-42", key)
    response = api("DELETE", "/api/v1/probes/device-42", server_key)

    assert client_key_attempt.status_code == 403
    assert response.json() == {"erased": True}
    assert not ClientProfile.objects.filter(client_hash=client_hash("device-42")).exists()
    assert not ProbeReceipt.objects.exists()


def test_erase_client_command__erases() -> None:
    from io import StringIO

    from capability_probe.schema import parse_probe
    from capability_probe.services import probe_record

    probe_record(probe=parse_probe(PROBE))
    out = StringIO()

    call_command("erase_client", "device-42", stdout=out)

    assert "Erased" in out.getvalue()
    assert not ClientProfile.objects.exists()


def test_purge__old_profiles__deleted() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from capability_probe.schema import parse_probe
    from capability_probe.services import probe_record, probes_purge_expired

    probe_record(probe=parse_probe(PROBE))
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
