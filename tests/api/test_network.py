"""The measured network: the endpoints probe.js times, and what a probe carries of it.

Run on PostgreSQL + Redis: a probe's measurements are stored in profile columns.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from capability_probe.models import ClientProfile
from capability_probe.services import client_hash
from tests.support.demo import load_demo

pytestmark = pytest.mark.django_db

# Safari on an iPhone: no memory, no navigator.connection; probe.js measured the link.
SAFARI = {
    "device": {"cores": 4, "webgpu": True, "shaderF16": True},
    "network": {"online": True, "measuredRttMs": 37.4, "measuredRttSamples": 5},
    "platform": {"os": "iOS", "browser": "Safari", "mobile": True},
    "benchmark": {"ms": 24.0, "workload": "matmul-f32-64x64-v1"},
}


@pytest.fixture(autouse=True)
def _own_profile_secret(settings) -> None:
    settings.EDGEFLAGS_PROFILE_SECRET = f"test-{uuid.uuid4()}"


def _probe(client_id: str, **sections: Any) -> dict[str, Any]:
    return {"probeId": str(uuid.uuid4()), "clientId": client_id, **SAFARI, **sections}


# --- the endpoints -------------------------------------------------------------------------


def test_ping__client_key__204_never_cached(api, client_key) -> None:
    response = api("GET", "/api/v1/network/ping?n=1", client_key)

    assert response.status_code == 204
    assert response.content == b""
    assert response["Cache-Control"] == "no-store"


def test_ping__no_key__401(api, client_key) -> None:
    assert api("GET", "/api/v1/network/ping", None).status_code == 401


def test_download__size__that_many_incompressible_bytes(api, client_key) -> None:
    response = api("GET", "/api/v1/network/download?bytes=65536", client_key)

    assert response.status_code == 200
    assert len(response.content) == 65536
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Cache-Control"] == "no-store"
    assert len(set(response.content[:4096])) > 200  # random: nothing on the way shrinks it


@pytest.mark.parametrize("query", ["", "?bytes=", "?bytes=12", "?bytes=2000000", "?bytes=-5"])
def test_download__bad_size__400_naming_bytes(api, client_key, query) -> None:
    response = api("GET", f"/api/v1/network/download{query}", client_key)

    assert response.status_code == 400
    assert response.json()["errorDetails"].startswith("bytes: ")


def test_download__a_script_with_the_public_key__rate_limited_per_address(
    api, client_key, settings, monkeypatch
) -> None:
    from api import network
    from api.rate_limits import TokenBuckets

    monkeypatch.setattr(network, "_downloads", TokenBuckets(1.0, burst=3.0))
    statuses = [
        api("GET", "/api/v1/network/download?bytes=1048576", client_key).status_code
        for _ in range(10)
    ]

    assert statuses[:3] == [200, 200, 200]
    assert set(statuses[3:]) == {429}
    refused = api("GET", "/api/v1/network/download?bytes=1048576", client_key)
    assert int(refused["Retry-After"]) >= 1
    assert refused.json()["errorCode"] == "RATE_LIMITED"
    # The limit is on payloads only: pings and probes go on.
    assert api("GET", "/api/v1/network/ping", client_key).status_code == 204


# --- probes carry the measurements -----------------------------------------------------------


def test_probe__measured_network__normalised_and_stored(api, client_key) -> None:
    probe = _probe(
        "iphone-1",
        network={
            "measuredRttMs": 37.4,
            "measuredRttSamples": 5,
            "measuredDownlinkMbps": 23.456,
            "measuredDownlinkSamples": 3,
        },
    )

    response = api("POST", "/api/v1/probes", client_key, probe)

    assert response.status_code == 200, response.content
    profile = ClientProfile.objects.get(client_hash=client_hash("iphone-1"))
    # Rounded as the vocabulary says: RTT to 10 ms, downlink to 1/20 Mbps.
    assert (profile.measured_rtt_ms, profile.measured_rtt_samples) == (40, 5)
    assert (profile.measured_downlink_mbps, profile.measured_downlink_samples) == (23.45, 3)
    assert profile.memory_gb is None  # not reported stays missing
    assert profile.rtt_ms is None
    attributes = profile.attributes()
    assert attributes["measuredRttMs"] == 40
    assert "rttMs" not in attributes  # the browser's estimate is not invented from it


@pytest.mark.parametrize(
    ("network", "field"),
    [
        ({"measuredRttMs": 40}, "network.measuredRttSamples"),
        ({"measuredRttSamples": 5}, "network.measuredRttMs"),
        ({"measuredDownlinkMbps": 4.0}, "network.measuredDownlinkSamples"),
        ({"measuredRttMs": -1, "measuredRttSamples": 5}, "network.measuredRttMs"),
        ({"measuredRttMs": 40, "measuredRttSamples": 0}, "network.measuredRttSamples"),
        ({"measuredRttMs": "40", "measuredRttSamples": 5}, "network.measuredRttMs"),
        (
            {"measuredDownlinkMbps": True, "measuredDownlinkSamples": 1},
            "network.measuredDownlinkMbps",
        ),
    ],
)
def test_probe__bad_measurement__400_naming_the_field_nothing_stored(
    api, client_key, network, field
) -> None:
    response = api("POST", "/api/v1/probes", client_key, _probe("iphone-2", network=network))

    assert response.status_code == 400
    assert response.json()["errorDetails"].startswith(f"{field}: ")
    assert not ClientProfile.objects.filter(client_hash=client_hash("iphone-2")).exists()


# --- decisions read the measurement -----------------------------------------------------------


@pytest.fixture
def demo(publish) -> None:
    load_demo(publish)


def _demo_key(publish) -> str:
    from access.api_keys import api_key_create
    from rollout.models import Environment

    environment = Environment.objects.get(key="demo")
    return publish(lambda: api_key_create(environment=environment, scope="client", name="t"))[1]


def test_evaluate__safari_iphone_stored_profile__edge_with_memory_estimated(
    api, demo, publish
) -> None:
    key = _demo_key(publish)
    assert api("POST", "/api/v1/probes", key, _probe("iphone-3")).status_code == 200

    body = api("POST", "/api/v1/evaluate", key, {"context": {"targetingKey": "iphone-3"}}).json()
    decision = body["flags"]["smart-compose"]

    assert decision["variant"] == "edge", decision
    assert decision["metadata"]["estimated"] == "memoryGb"


def test_evaluate__safari_slow_phone__cloud_on_a_fast_link_lite_on_a_slow_one(
    api, demo, publish
) -> None:
    key = _demo_key(publish)
    slow = {"device": {"cores": 4, "webgpu": False}, "benchmark": {"ms": 650.0}}
    fast_link = {**SAFARI["network"], "measuredRttMs": 60}
    slow_link = {**SAFARI["network"], "measuredRttMs": 900}

    rungs = []
    for client_id, network in (("phone-fast", fast_link), ("phone-slow", slow_link)):
        probe = _probe(client_id, network=network, **slow)
        rungs.append(
            api("POST", "/api/v1/probes", key, probe).json()["decisions"]["flags"]["smart-compose"]
        )

    assert [rung["variant"] for rung in rungs] == ["cloud", "lite"]
    assert rungs[1]["unmet"]["cloud"] == ["rttMs ≤ 300"]


# --- no erratic rungs ---------------------------------------------------------------------


def _compose(api, key: str, client_id: str, **context: Any) -> dict[str, Any]:
    body = {"context": {"targetingKey": client_id, **context}, "flags": ["smart-compose"]}
    return api("POST", "/api/v1/evaluate", key, body).json()["flags"]["smart-compose"]


def test_probes__jittery_link__settled_rung_stored_and_served(api, demo, publish) -> None:
    key = _demo_key(publish)
    slow = {"device": {"cores": 4, "webgpu": False}, "benchmark": {"ms": 650.0}}

    def probe(rtt: int) -> str:
        network = {**SAFARI["network"], "measuredRttMs": rtt}
        answer = api("POST", "/api/v1/probes", key, _probe("jittery", network=network, **slow))
        return answer.json()["decisions"]["flags"]["smart-compose"]["variant"]

    served = [probe(rtt) for rtt in (420, 200, 420, 200, 200, 420, 460)]
    profile = ClientProfile.objects.get(client_hash=client_hash("jittery"))

    # lite first (420 ms); 200 once is not enough; 200 twice in a row earns cloud; then cloud
    # holds at 420 and 460 ms (within the tolerance).
    assert served == ["lite", "lite", "lite", "lite", "cloud", "cloud", "cloud"]
    assert profile.settled_rungs["smart-compose"] == {"rung": "cloud"}
    # Evaluations read the same settled rung from the stored profile, with its own hints.
    assert _compose(api, key, "jittery")["variant"] == "cloud"
    # Served cloud, the answer says what the client gets offline; offline, it gets that.
    served_cloud = _compose(api, key, "jittery")
    assert served_cloud["offline"]["variant"] == "lite"
    assert served_cloud["offline"]["uiState"]
    offline = _compose(api, key, "jittery", online=False)
    assert offline["variant"] == "lite"
    assert offline["unmet"]["cloud"] == ["offline"]
    assert "offline" not in offline


def test_evaluate__settled_rungs_sent_by_a_client__ignored(api, demo, publish) -> None:
    key = _demo_key(publish)
    slow = {"device": {"cores": 4, "webgpu": False}, "benchmark": {"ms": 650.0}}
    network = {**SAFARI["network"], "measuredRttMs": 420}
    api("POST", "/api/v1/probes", key, _probe("claims-cloud", network=network, **slow))

    forged = {"smart-compose": {"rung": "cloud"}}

    assert _compose(api, key, "claims-cloud", settledRungs=forged)["variant"] == "lite"
