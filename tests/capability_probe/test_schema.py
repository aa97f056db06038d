"""Probe validation and normalisation: browsers' quantisation, ranges, names of bad fields."""

from __future__ import annotations

import pytest

from capability_probe.schema import ProbeInvalid, parse_probe, probe_fingerprint


def _probe(**sections: object) -> dict[str, object]:
    return {"probeId": "p-1", "clientId": "client-1", **sections}


def test_parse_probe__chromium_laptop__normalised_like_browsers() -> None:
    probe = parse_probe(
        _probe(
            device={"memoryGb": 12, "cores": 8, "webgpu": True, "batteryLevel": 0.456},
            network={"effectiveType": "4g", "rttMs": 73, "downlinkMbps": 23.7, "saveData": False},
            platform={"os": "Windows", "browser": "Chrome"},
            benchmark={"ms": 21.234, "workload": "matmul-f32-64x64-v1"},
        )
    )

    assert probe.profile["memory_gb"] == 8.0  # power of two at or below
    assert probe.profile["rtt_ms"] == 50  # rounded to 50 ms
    assert probe.profile["downlink_mbps"] == 10.0  # capped at 10 Mbps
    assert probe.profile["benchmark_ms"] == 21.23
    assert probe.runtime == {"batteryLevel": 0.46}
    assert "shader_f16" not in probe.profile  # missing stays missing


def test_parse_probe__safari_without_memory__memory_missing_not_invented() -> None:
    probe = parse_probe(_probe(device={"cores": 4}, platform={"browser": "Safari"}))

    assert "memory_gb" not in probe.profile
    assert probe.profile["cores"] == 4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_probe(device={"memoryGb": "8"}), "device.memoryGb"),
        (_probe(device={"memoryGb": -1}), "device.memoryGb"),
        (_probe(device={"webgpu": "yes"}), "device.webgpu"),
        (_probe(device={"gpuVendor": "x"}), "device.gpuVendor"),
        (_probe(network={"effectiveType": "5g"}), "network.effectiveType"),
        (_probe(network={"rttMs": True}), "network.rttMs"),
        (_probe(benchmark={"ms": 0}), "benchmark.ms"),
        (_probe(extra=1), "extra"),
        ({"clientId": "c"}, "probeId"),
        ({"probeId": "p"}, "clientId"),
        (_probe(consent="yes"), "consent"),
        (_probe(device=[1]), "device"),
        (_probe(platform={"os": "mac\ud800"}), "platform.os"),
        (_probe(platform={"browser": "Chrome\x00"}), "platform.browser"),
        (_probe(benchmark={"ms": 1, "workload": "\udfff"}), "benchmark.workload"),
        ({"probeId": "p", "clientId": "c\x07"}, "clientId"),
        (_probe(device={"\ud800": 1}), "device.?"),
        (_probe(platform={"os": float("nan")}), "platform.os"),
    ],
)
def test_parse_probe__bad_field__rejected_naming_it(body, field) -> None:
    with pytest.raises(ProbeInvalid) as error:
        parse_probe(body)

    assert str(error.value).startswith(f"{field}: ")


def test_probe_fingerprint__same_probe_reordered__equal_other_content__differs() -> None:
    one = parse_probe(_probe(device={"cores": 4, "webgpu": True}, network={"online": True}))
    same = parse_probe(_probe(network={"online": True}, device={"webgpu": True, "cores": 4}))
    other = parse_probe(_probe(device={"cores": 2, "webgpu": True}, network={"online": True}))

    assert probe_fingerprint(one) == probe_fingerprint(same)
    assert probe_fingerprint(one) != probe_fingerprint(other)
