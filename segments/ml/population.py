"""A realistic synthetic population of capability profiles (docs/capability-signals.md).

A latent device tier is drawn first, then every signal given the tier (so memory, cores,
WebGPU and inference speed move together), then everything is quantised the way browsers
report it and the fields a browser does not expose are dropped. Seeded and vectorised:
a million clients take a second or two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tier:
    """A latent device class and the distributions its signals are drawn from."""

    share: float  # default weight in the population
    ram: tuple[float, ...]  # nominal RAM in GB, picked uniformly
    cores: tuple[float, ...]  # logical cores, picked uniformly
    webgpu: float  # P(WebGPU adapter)
    f16: float  # P(shader-f16 | WebGPU)
    webnn: float  # P(WebNN context created)
    bench: float  # median ms of the reference workload
    mobile: bool
    rtt: float  # median RTT on a good link, ms
    downlink: float  # median downlink on a good link, Mbps


TIERS: dict[str, Tier] = {
    "low-phone": Tier(0.18, (2, 3), (4, 8), 0.03, 0.1, 0.0, 700.0, True, 60.0, 2.5),
    "mid-phone": Tier(0.30, (4, 6), (8,), 0.35, 0.3, 0.02, 160.0, True, 45.0, 6.0),
    "high-phone": Tier(0.14, (8, 12), (8,), 0.9, 0.85, 0.25, 35.0, True, 35.0, 9.0),
    "laptop": Tier(0.23, (16,), (8, 12), 0.85, 0.6, 0.1, 20.0, False, 25.0, 25.0),
    "desktop": Tier(0.15, (32, 64), (16, 24), 0.97, 0.9, 0.05, 7.0, False, 15.0, 60.0),
}
# Tiers to plant on purpose (tests of new-identity detection): name them in `tier_weights`.
EXTRA_TIERS: dict[str, Tier] = {
    # Very slow devices on bad networks.
    "feature-phone": Tier(0.0, (0.5, 1), (2,), 0.0, 0.0, 0.0, 6000.0, True, 600.0, 0.3),
    # Phones with an NPU behind WebNN: a reference workload several times faster than WebGPU.
    "npu-phone": Tier(0.0, (12, 16), (8,), 0.95, 0.95, 0.97, 6.0, True, 35.0, 9.0),
}

# navigator.deviceMemory value sets: before Chrome 147, and since then per platform.
MEMORY_OLD = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
MEMORY_ANDROID = np.array([1.0, 2.0, 4.0, 8.0])
MEMORY_DESKTOP = np.array([2.0, 4.0, 8.0, 16.0, 32.0])
OLD_CHROME_SHARE = 0.25  # Chromium clients still on a version before 147
NO_THROUGHPUT_ESTIMATE = 0.03  # Chromium clients with no downlink estimate (report 10)
SAVE_DATA_SHARE = 0.02
# Chromium's effective type from the HTTP RTT estimate (slow-2g, 2g, 3g thresholds, ms).
ECT_RTT_MS = (2010.0, 1420.0, 272.0)
# probe.js's own measurements (every browser): the median of RTT_SAMPLES pings, each off by a
# log-normal jitter, and the throughput of DOWNLINK_SAMPLES timed payloads (none under
# saveData); rounded as the server stores them.
RTT_SAMPLES = 5
PING_JITTER = 0.15
DOWNLINK_SAMPLES = 2
PAYLOAD_JITTER = 0.2


@dataclass(frozen=True)
class Population:
    """Profile columns (segments/ml's data contract) and each row's planted tier."""

    columns: dict[str, np.ndarray]
    tiers: np.ndarray
    # The same clients as they really are, in the columns requirements read: the memory a
    # current Chromium would report on the device, the true link, and what the browser can
    # use (a browser without WebGPU cannot run a WebGPU model, whatever the hardware).
    truth: dict[str, np.ndarray]


def device_memory(ram: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """navigator.deviceMemory: RAM rounded to the nearest power of two, clamped to `allowed`."""
    lower = np.exp2(np.floor(np.log2(ram)))
    nearest = np.where(ram < 1.5 * lower, lower, 2 * lower)
    return np.asarray(np.clip(nearest, allowed[0], allowed[-1]), dtype=float)


def _tier_catalogue(
    tier_weights: Mapping[str, float] | None, extra_tiers: Mapping[str, Tier] | None
) -> tuple[dict[str, Tier], dict[str, float]]:
    catalogue = {**TIERS, **EXTRA_TIERS, **(extra_tiers or {})}
    if tier_weights is None:
        tiers = {**TIERS, **(extra_tiers or {})}
        return catalogue, {name: tier.share for name, tier in tiers.items()}
    unknown = set(tier_weights) - set(catalogue)
    if unknown:
        raise ValueError(f"unknown tiers {sorted(unknown)}")
    return catalogue, dict(tier_weights)


def generate_population(
    n: int,
    seed: int,
    *,
    tier_weights: Mapping[str, float] | None = None,
    extra_tiers: Mapping[str, Tier] | None = None,
    network_shift: float = 1.0,
    device_shift: float = 1.0,
    browser_quirks: bool = True,
    weak_cellular: float = 0.35,
    spread: float = 1.0,
    slow_tail: float = 0.04,
    pure_tiers: bool = False,
) -> Population:
    """`n` synthetic clients, reproducible from `seed`.

    `tier_weights` names tiers of TIERS, EXTRA_TIERS or `extra_tiers` (by default TIERS and
    `extra_tiers` at their own shares). The shifts move the whole population for drift tests:
    `network_shift` multiplies RTTs and divides downlinks, `device_shift` multiplies
    inference times. The remaining knobs isolate the planted structure for tests of the
    clustering itself: without `browser_quirks` every client is a current Chromium (nothing
    dropped, the current deviceMemory values), `weak_cellular` is the share of phones on a
    weak cellular link, `spread` scales every log-normal spread, `slow_tail` is the share of
    throttled devices, and with `pure_tiers` every client of a tier has its typical flags
    (the majority), core count (the first) and link (the median, before Chromium's noise and
    rounding).
    """
    rng = np.random.default_rng(seed)
    catalogue, weights = _tier_catalogue(tier_weights, extra_tiers)
    names = np.array(list(weights))
    probabilities = np.array([weights[name] for name in names], dtype=float)
    tiers = rng.choice(names, size=n, p=probabilities / probabilities.sum())

    ram, cores, bench, rtt, downlink = (np.empty(n) for _ in range(5))
    webgpu, f16, webnn, mobile = (np.empty(n, dtype=bool) for _ in range(4))
    for name in names:
        tier = catalogue[str(name)]
        mask = tiers == name
        m = int(mask.sum())

        def draw(p: float, m: int = m) -> np.ndarray:
            return np.full(m, p >= 0.5) if pure_tiers else rng.random(m) < p

        ram[mask] = rng.choice(np.asarray(tier.ram), size=m)
        cores[mask] = tier.cores[0] if pure_tiers else rng.choice(np.asarray(tier.cores), size=m)
        webgpu[mask] = draw(tier.webgpu)
        f16[mask] = webgpu[mask] & draw(tier.f16)
        webnn[mask] = draw(tier.webnn)
        mobile[mask] = tier.mobile
        bench[mask] = tier.bench
        rtt[mask] = tier.rtt
        downlink[mask] = tier.downlink

    # Inference: log-normal around the tier's median, and a slow tail 5-10x slower
    # (thermal throttling, background load, power saving).
    bench *= device_shift * rng.lognormal(0.0, 0.25 * spread, n)
    slow = rng.random(n) < slow_tail
    bench[slow] *= rng.uniform(5, 10, int(slow.sum()))

    # Network: log-normal around the tier's link, and a share of phones on weak cellular
    # links (several times the RTT, a fraction of the bandwidth): they make most of the
    # clients that are not "4g".
    link_spread = 0.0 if pure_tiers else spread
    rtt *= network_shift * rng.lognormal(0.0, 0.6 * link_spread, n)
    downlink *= rng.lognormal(0.0, 0.8 * link_spread, n) / network_shift
    weak = mobile & (rng.random(n) < weak_cellular)
    rtt[weak] *= rng.uniform(8, 20, int(weak.sum()))
    downlink[weak] /= rng.uniform(4, 12, int(weak.sum()))

    # Browsers. Phones: Chrome on Android or Safari on iOS; computers: Chrome, Edge,
    # Safari (macOS), Firefox.
    if browser_quirks:
        browser = np.where(
            mobile,
            np.where(rng.random(n) < 0.68, "Chrome", "Safari"),
            rng.choice(
                np.array(["Chrome", "Edge", "Safari", "Firefox"]), n, p=[0.62, 0.12, 0.16, 0.1]
            ),
        ).astype(object)
        desktop_os = rng.choice(np.array(["Windows", "macOS", "Linux"]), n, p=[0.7, 0.2, 0.1])
        os_name = np.where(
            mobile,
            np.where(browser == "Chrome", "Android", "iOS"),
            np.where(browser == "Safari", "macOS", desktop_os),
        ).astype(object)
    else:
        browser = np.full(n, "Chrome", dtype=object)
        os_name = np.where(mobile, "Android", "Windows").astype(object)
    chromium = (browser == "Chrome") | (browser == "Edge")
    webkit = browser == "Safari"
    android = os_name == "Android"

    # deviceMemory sees the RAM the OS reports (a little under the nominal figure).
    usable = ram * rng.uniform(0.9, 0.97, n)
    old_chrome = (rng.random(n) < OLD_CHROME_SHARE) & browser_quirks
    memory = np.select(
        [~chromium, old_chrome, android],
        [np.nan, device_memory(usable, MEMORY_OLD), device_memory(usable, MEMORY_ANDROID)],
        device_memory(usable, MEMORY_DESKTOP),
    )
    # WebKit clamps hardwareConcurrency to 4 or 8; iPhones report 4.
    cores_seen = np.where(webkit, np.where(mobile | (cores < 8), 4.0, 8.0), cores)

    # Chromium: effective type from the RTT estimate; the reported RTT rounded to 50 ms
    # (cap 3000) and downlink to 0.05 Mbps (cap 10, and 10 with no estimate), ±10 % noise.
    effective = np.select(
        [rtt >= ECT_RTT_MS[0], rtt >= ECT_RTT_MS[1], rtt >= ECT_RTT_MS[2]],
        ["slow-2g", "2g", "3g"],
        "4g",
    ).astype(object)
    rtt_seen = np.minimum(3000.0, np.round(rtt * rng.uniform(0.9, 1.1, n) / 50) * 50)
    downlink_seen = np.minimum(10.0, np.round(downlink * rng.uniform(0.9, 1.1, n) * 20) / 20)
    downlink_seen[rng.random(n) < NO_THROUGHPUT_ESTIMATE] = 10.0
    rtt_seen[~chromium] = np.nan
    downlink_seen[~chromium] = np.nan
    effective[~chromium] = None
    save_data = np.where(chromium, rng.random(n) < SAVE_DATA_SHARE, np.nan)

    # WebGPU: Chromium and Safari 26 everywhere, Firefox 141 on Windows only; WebNN:
    # Chromium only.
    webgpu_seen = webgpu & (chromium | webkit | (os_name == "Windows"))
    storage = np.round(ram * rng.uniform(8, 32, n), 1)

    # probe.js measures the link in every browser; the downlink payload is skipped under
    # saveData, which only Chromium reports here.
    pings = rtt[:, None] * rng.lognormal(0.0, PING_JITTER, (n, RTT_SAMPLES))
    measured_rtt = np.minimum(10_000.0, np.round(np.median(pings, axis=1) / 10) * 10)
    payloads = downlink[:, None] * rng.lognormal(0.0, PAYLOAD_JITTER, (n, DOWNLINK_SAMPLES))
    measured_downlink = np.minimum(1000.0, np.round(payloads[:, -1] * 20) / 20)
    saving = save_data == 1.0
    measured_downlink[saving] = np.nan
    current_memory = np.where(
        mobile, device_memory(usable, MEMORY_ANDROID), device_memory(usable, MEMORY_DESKTOP)
    )

    columns: dict[str, np.ndarray] = {
        "memoryGb": memory,
        "cores": cores_seen,
        "benchmarkMs": np.round(bench, 2),
        "rttMs": rtt_seen,
        "downlinkMbps": downlink_seen,
        "measuredRttMs": measured_rtt,
        "measuredRttSamples": np.full(n, float(RTT_SAMPLES)),
        "measuredDownlinkMbps": measured_downlink,
        "measuredDownlinkSamples": np.where(saving, np.nan, float(DOWNLINK_SAMPLES)),
        "storageGb": storage,
        "webgpu": webgpu_seen.astype(float),
        "shaderF16": (webgpu_seen & f16).astype(float),
        "webnn": (webnn & chromium).astype(float),
        "wasmSimd": (np.ones(n, dtype=bool) if pure_tiers else rng.random(n) < 0.98).astype(float),
        "saveData": save_data.astype(float),
        "mobile": mobile.astype(float),
        "effectiveType": effective,
        "os": os_name,
        "browser": browser,
    }
    truth: dict[str, np.ndarray] = {
        "memoryGb": current_memory,
        "cores": cores,
        "benchmarkMs": columns["benchmarkMs"],
        "rttMs": rtt,
        "downlinkMbps": downlink,
        "webgpu": columns["webgpu"],
        "shaderF16": columns["shaderF16"],
        "webnn": columns["webnn"],
        "mobile": columns["mobile"],
        "saveData": np.where(saving, 1.0, 0.0),
    }
    return Population(columns=columns, tiers=tiers, truth=truth)
