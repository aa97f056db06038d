"""The synthetic population (docs/capability-signals.md): browser quantisation, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from segments.ml.population import (
    MEMORY_ANDROID,
    MEMORY_DESKTOP,
    MEMORY_OLD,
    TIERS,
    Population,
    Tier,
    device_memory,
    generate_population,
)


@pytest.fixture(scope="module")
def million() -> tuple[Population, float]:
    started = time.perf_counter()
    population = generate_population(1_000_000, seed=1)
    return population, time.perf_counter() - started


def test_generate_population__one_million_rows__within_seconds(million) -> None:
    population, seconds = million

    assert seconds < 20
    assert {len(values) for values in population.columns.values()} == {1_000_000}
    assert len(population.tiers) == 1_000_000


def test_generate_population__data_contract__columns_and_types(million) -> None:
    columns = million[0].columns

    numeric = ["memoryGb", "cores", "benchmarkMs", "rttMs", "downlinkMbps", "storageGb"]
    numeric += ["measuredRttMs", "measuredRttSamples"]
    numeric += ["measuredDownlinkMbps", "measuredDownlinkSamples"]
    flags = ["webgpu", "shaderF16", "webnn", "wasmSimd", "saveData", "mobile"]
    assert set(columns) == {*numeric, *flags, "effectiveType", "os", "browser"}
    assert all(columns[name].dtype == np.float64 for name in numeric + flags)
    for name in flags:
        present = columns[name][~np.isnan(columns[name])]
        assert set(np.unique(present)) <= {0.0, 1.0}
    assert all(columns[name].dtype == object for name in ("effectiveType", "os", "browser"))
    assert set(columns["effectiveType"]) <= {"slow-2g", "2g", "3g", "4g", None}


def test_generate_population__same_seed__same_population() -> None:
    first = generate_population(2_000, seed=3)
    again = generate_population(2_000, seed=3)
    other = generate_population(2_000, seed=4)

    for name, values in first.columns.items():
        assert np.array_equal(values, again.columns[name], equal_nan=values.dtype != object)
    assert np.array_equal(first.tiers, again.tiers)
    assert not np.array_equal(first.columns["benchmarkMs"], other.columns["benchmarkMs"])


def test_generate_population__device_memory__within_the_browser_value_sets(million) -> None:
    columns = million[0].columns
    memory = columns["memoryGb"]
    android = columns["os"] == "Android"
    chromium = np.isin(columns["browser"], ["Chrome", "Edge"])

    assert set(np.unique(memory[android])) <= {*MEMORY_OLD, *MEMORY_ANDROID}
    assert set(np.unique(memory[chromium & ~android])) <= {*MEMORY_OLD, *MEMORY_DESKTOP}
    assert np.isnan(memory[~chromium]).all()  # Safari and Firefox do not report it
    assert not np.isnan(memory[chromium]).any()
    # Both value sets are in use: Chromium before 147 caps a 32 GB desktop at 8.
    desktops = chromium & (million[0].tiers == "desktop")
    assert set(np.unique(memory[desktops])) == {8.0, 32.0}


def test_generate_population__webkit__cores_clamped_and_no_network_info(million) -> None:
    columns = million[0].columns
    safari = columns["browser"] == "Safari"
    firefox = columns["browser"] == "Firefox"

    assert (columns["cores"][columns["os"] == "iOS"] == 4).all()
    assert set(np.unique(columns["cores"][safari])) == {4.0, 8.0}
    for name in ("rttMs", "downlinkMbps", "saveData"):
        assert np.isnan(columns[name][safari | firefox]).all()
    assert all(value is None for value in columns["effectiveType"][safari | firefox])


def test_generate_population__network__as_chromium_reports_it(million) -> None:
    columns = million[0].columns
    rtt = columns["rttMs"][~np.isnan(columns["rttMs"])]
    downlink = columns["downlinkMbps"][~np.isnan(columns["downlinkMbps"])]
    effective = columns["effectiveType"][columns["effectiveType"] != None]  # noqa: E711

    assert (rtt % 50 == 0).all()
    assert rtt.min() >= 0
    assert rtt.max() == 3000
    assert np.allclose(downlink * 20, np.round(downlink * 20))
    assert downlink.max() == 10
    assert np.mean(downlink == 10) > 0.2  # the mass at the cap
    assert np.median(rtt) < 100
    assert np.percentile(rtt, 75) == 100
    assert 0.15 <= np.mean(effective != "4g") <= 0.25


def test_generate_population__tails__slow_devices_and_save_data(million) -> None:
    population = million[0]
    bench = population.columns["benchmarkMs"]
    save_data = population.columns["saveData"]

    slow_shares = []
    for tier in TIERS:
        times = bench[population.tiers == tier]
        ratio = times / np.median(times)
        slow_shares.append(np.mean(ratio > 4))
        assert ratio.max() < 10 * 2.5  # 5-10x slower, on top of the usual spread
    assert all(0.02 < share < 0.06 for share in slow_shares)
    assert 0.015 < np.nanmean(save_data) < 0.025


def test_generate_population__tiers__correlated_signals(million) -> None:
    population = million[0]
    columns = population.columns

    def median(name: str, tier: str) -> float:
        return float(np.nanmedian(columns[name][population.tiers == tier]))

    order = ["low-phone", "mid-phone", "high-phone", "laptop", "desktop"]
    assert [median("memoryGb", t) for t in order] == sorted(median("memoryGb", t) for t in order)
    assert [median("benchmarkMs", t) for t in order] == sorted(
        (median("benchmarkMs", t) for t in order), reverse=True
    )
    webgpu = [np.nanmean(columns["webgpu"][population.tiers == t]) for t in order[:3]]
    assert webgpu == sorted(webgpu)


def test_generate_population__extra_tier__planted_at_its_weight() -> None:
    npu = Tier(0.1, (16,), (8,), 1.0, 1.0, 1.0, 5.0, True, 30.0, 9.0)

    population = generate_population(50_000, seed=2, extra_tiers={"npu-tablet": npu})

    planted = population.tiers == "npu-tablet"
    share = 0.1 / (1.0 + 0.1)
    assert abs(planted.mean() - share) < 0.01
    assert np.median(population.columns["benchmarkMs"][planted]) < 6


def test_generate_population__unknown_tier__value_error() -> None:
    with pytest.raises(ValueError, match="unknown tiers"):
        generate_population(10, seed=0, tier_weights={"smart-fridge": 1.0})


def test_generate_population__shifts__slower_devices_and_networks() -> None:
    base = generate_population(50_000, seed=7)
    shifted = generate_population(50_000, seed=7, network_shift=3.0, device_shift=2.0)

    ratio = np.median(shifted.columns["benchmarkMs"]) / np.median(base.columns["benchmarkMs"])
    assert 1.8 < ratio < 2.2
    assert np.nanmean(shifted.columns["rttMs"]) > 2 * np.nanmean(base.columns["rttMs"])
    assert np.nanmean(shifted.columns["downlinkMbps"]) < np.nanmean(base.columns["downlinkMbps"])


@pytest.mark.parametrize(
    ("ram", "allowed", "expected"),
    [
        (3.7, MEMORY_OLD, 4.0),  # nearest power of two
        (5.6, MEMORY_OLD, 4.0),
        (7.4, MEMORY_OLD, 8.0),
        (0.2, MEMORY_OLD, 0.25),  # clamped to the value set
        (60.0, MEMORY_OLD, 8.0),
        (60.0, MEMORY_DESKTOP, 32.0),
        (0.9, MEMORY_ANDROID, 1.0),
        (1.4, MEMORY_DESKTOP, 2.0),
    ],
)
def test_device_memory__ram__nearest_power_of_two_in_the_value_set(
    ram: float, allowed: np.ndarray, expected: float
) -> None:
    assert device_memory(np.array([ram]), allowed)[0] == expected
