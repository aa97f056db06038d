"""A realistic synthetic population of capability profiles (capability.md's recipe).

A latent device tier is drawn first, then every signal given the tier (so memory, cores,
WebGPU and inference speed move together), then everything is quantised the way browsers
report it and the fields a browser does not expose are dropped. Seeded and vectorised:
a million clients take a few seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tier:
    """A latent device class and the distributions its signals are drawn from."""

    share: float
    ram: tuple[float, ...]  # true RAM in GB, picked uniformly
    cores: tuple[float, ...]
    webgpu: float  # P(WebGPU adapter)
    f16: float  # P(shader-f16 | WebGPU)
    webnn: float
    bench: float  # median ms of the reference workload
    mobile: bool
    rtt: float  # median RTT, ms
    downlink: float  # median downlink, Mbps


TIERS: dict[str, Tier] = {
    "low-phone": Tier(0.18, (2, 3), (8,), 0.03, 0.1, 0.0, 700.0, True, 110.0, 2.5),
    "mid-phone": Tier(0.30, (4, 6), (8,), 0.35, 0.3, 0.02, 160.0, True, 75.0, 6.0),
    "high-phone": Tier(0.14, (8, 12), (8,), 0.9, 0.85, 0.25, 40.0, True, 60.0, 9.0),
    "laptop": Tier(0.23, (16,), (12,), 0.85, 0.6, 0.1, 22.0, False, 35.0, 25.0),
    "desktop": Tier(0.15, (32, 64), (16,), 0.97, 0.9, 0.05, 7.0, False, 25.0, 60.0),
}
# A tier to plant on purpose (tests of new-identity detection): very slow devices on bad networks.
EXTRA_TIERS: dict[str, Tier] = {
    "feature-phone": Tier(0.0, (0.5, 1), (2,), 0.0, 0.0, 0.0, 6000.0, True, 900.0, 0.3),
}
CHROME_MEMORY_DESKTOP = np.array([2.0, 4.0, 8.0, 16.0, 32.0])
CHROME_MEMORY_ANDROID = np.array([1.0, 2.0, 4.0, 8.0])


@dataclass(frozen=True)
class Population:
    """Profile columns (segments/ml's data contract) and each row's planted tier."""

    columns: dict[str, np.ndarray]
    tiers: np.ndarray


def _quantise_memory(ram: np.ndarray, android: np.ndarray) -> np.ndarray:
    """navigator.deviceMemory since Chrome 147: the largest allowed value at or below RAM."""
    out = np.empty_like(ram)
    for mask, allowed in ((android, CHROME_MEMORY_ANDROID), (~android, CHROME_MEMORY_DESKTOP)):
        index = np.searchsorted(allowed, ram[mask], side="right") - 1
        out[mask] = allowed[np.clip(index, 0, len(allowed) - 1)]
    return out


def generate_population(
    n: int,
    seed: int,
    *,
    tier_weights: Mapping[str, float] | None = None,
    network_shift: float = 1.0,
    device_shift: float = 1.0,
    browser_quirks: bool = True,
    weak_cellular: float = 0.3,
    spread: float = 1.0,
    slow_tail: float = 0.04,
    pure_tiers: bool = False,
) -> Population:
    """`n` synthetic clients. Weights may name EXTRA_TIERS to plant them; the shifts multiply
    RTTs and benchmark times (and divide downlinks) to move the whole population. Without
    `browser_quirks` every client is Chromium (nothing dropped), which isolates the planted
    device structure for tests of the clustering itself; `spread` scales every log-normal
    spread and `slow_tail` is the share of throttled devices. With `pure_tiers` a tier's
    feature flags are all set or all unset (its majority), so a tier is one cluster."""
    rng = np.random.default_rng(seed)
    catalogue = {**TIERS, **EXTRA_TIERS}
    weights = dict(tier_weights) if tier_weights else {k: v.share for k, v in TIERS.items()}
    names = np.array(list(weights))
    probabilities = np.array([weights[k] for k in names], dtype=float)
    tiers = rng.choice(names, size=n, p=probabilities / probabilities.sum())

    ram = np.empty(n)
    cores = np.empty(n)
    webgpu = np.empty(n)
    f16 = np.empty(n)
    webnn = np.empty(n)
    bench_median = np.empty(n)
    mobile = np.empty(n, dtype=bool)
    rtt_median = np.empty(n)
    downlink_median = np.empty(n)
    for name in names:
        tier = catalogue[str(name)]
        mask = tiers == name
        m = int(mask.sum())

        def draw(p: float, m: int = m) -> np.ndarray:
            return np.full(m, p >= 0.5) if pure_tiers else rng.random(m) < p

        ram[mask] = rng.choice(np.asarray(tier.ram), size=m)
        cores[mask] = rng.choice(np.asarray(tier.cores), size=m)
        webgpu[mask] = draw(tier.webgpu)
        f16[mask] = webgpu[mask] * draw(tier.f16)
        webnn[mask] = draw(tier.webnn)
        bench_median[mask] = tier.bench
        mobile[mask] = tier.mobile
        rtt_median[mask] = tier.rtt
        downlink_median[mask] = tier.downlink

    # Inference time: log-normal around the tier's median, and a slow tail 5-10x slower
    # (thermal throttling, background load, power saving).
    bench = bench_median * device_shift * rng.lognormal(0.0, 0.25 * spread, n)
    slow = rng.random(n) < slow_tail
    bench[slow] *= rng.uniform(5, 10, int(slow.sum()))

    # Network: log-normal RTT (median well under 100 ms, p75 near 100) and downlink.
    rtt = rtt_median * network_shift * rng.lognormal(0.0, 0.75 * spread, n)
    downlink = downlink_median / network_shift * rng.lognormal(0.0, 0.8 * spread, n)
    # A share of phones sit on weak cellular links: several times the RTT, a fraction of
    # the bandwidth. They make most of the 15-25 % of clients that are not "4g".
    weak = mobile & (rng.random(n) < weak_cellular)
    rtt[weak] *= rng.uniform(3, 7, int(weak.sum()))
    downlink[weak] /= rng.uniform(4, 12, int(weak.sum()))

    # Browsers. Phones: Chrome on Android or Safari on iOS; computers: Chrome, Edge,
    # Safari, Firefox.
    browser = np.where(
        mobile,
        np.where(rng.random(n) < 0.68, "Chrome", "Safari"),
        rng.choice(
            np.array(["Chrome", "Edge", "Safari", "Firefox"]), size=n, p=[0.62, 0.12, 0.16, 0.10]
        ),
    ).astype(object)
    os_name = np.where(
        mobile,
        np.where(browser == "Chrome", "Android", "iOS"),
        np.where(
            browser == "Safari",
            "macOS",
            rng.choice(np.array(["Windows", "macOS", "Linux"]), size=n, p=[0.7, 0.2, 0.1]),
        ),
    ).astype(object)
    if not browser_quirks:
        browser = np.full(n, "Chrome", dtype=object)
        os_name = np.where(mobile, "Android", "Windows").astype(object)
    chromium = (browser == "Chrome") | (browser == "Edge")
    android = os_name == "Android"
    ios = os_name == "iOS"

    memory = np.where(chromium, _quantise_memory(ram, android), np.nan)
    cores_seen = np.where(ios, 4.0, cores)  # WebKit reports 4 on iPhones
    # Chromium: RTT rounded to 50 ms (cap 3000), downlink to 0.05 Mbps (cap 10), ±10 % noise.
    rtt_seen = np.minimum(3000.0, np.round(rtt * rng.uniform(0.9, 1.1, n) / 50) * 50)
    downlink_seen = np.minimum(10.0, np.round(downlink * rng.uniform(0.9, 1.1, n) * 20) / 20)
    # Chromium's effective type: the slower of what RTT and throughput each indicate.
    effective = np.select(
        [
            (rtt_seen >= 2010) | (downlink_seen < 0.05),
            (rtt_seen >= 1420) | (downlink_seen < 0.075),
            (rtt_seen >= 272) | (downlink_seen < 0.4),
        ],
        ["slow-2g", "2g", "3g"],
        "4g",
    ).astype(object)
    no_network_info = ~chromium
    rtt_seen[no_network_info] = np.nan
    downlink_seen[no_network_info] = np.nan
    effective[no_network_info] = None
    save_data = np.where(chromium, (rng.random(n) < 0.02).astype(float), np.nan)
    # WebGPU shipped in Chromium first; Safari 26 and Firefox 141 have it on some platforms.
    webgpu_seen = np.where(chromium | (browser == "Safari"), webgpu, 0.0)
    f16_seen = np.where(webgpu_seen > 0, f16, 0.0)
    webnn_seen = np.where(chromium, webnn, 0.0)
    storage = np.round(ram * rng.uniform(8, 32, n), 1)

    columns: dict[str, np.ndarray] = {
        "memoryGb": memory,
        "cores": cores_seen,
        "benchmarkMs": np.round(bench, 2),
        "rttMs": rtt_seen,
        "downlinkMbps": downlink_seen,
        "storageGb": storage,
        "webgpu": webgpu_seen.astype(float),
        "shaderF16": f16_seen.astype(float),
        "webnn": webnn_seen.astype(float),
        "wasmSimd": (np.ones(n) if pure_tiers else rng.random(n) < 0.98).astype(float),
        "saveData": save_data,
        "mobile": mobile.astype(float),
        "effectiveType": effective,
        "os": os_name,
        "browser": browser,
    }
    return Population(columns=columns, tiers=tiers)
