"""The capability vocabulary: every signal a client reports about itself, named once.

One entry per field: its wire name (camelCase, as a probe sends it and as it appears in an
evaluation context), the profile column that stores it, its type, how a probe's value is
normalised (the range accepted, the browser's rounding, the cap) and its role:

- `clustered`: a segmentation feature (segments/ml/features.py builds on exactly these);
- `descriptive`: stored with the profile and shown, never clustered;
- `runtime hint`: applies to the request it comes with (saveData, battery, online, compute
  pressure). A hint can only take rungs away; it never stands for the client's capability.
  saveData has a column, because segmentation reads it for the save-data rule, but it is
  never a clustering feature and never counts as capability brought inline.

The probe schema and its normaliser, the profile's attribute names, segmentation's population
columns, the ML feature spec, the engine's "has this client been profiled" test and the
client API's "capability inline" test all derive from this table; tests/capability_probe/
test_vocabulary.py holds each of them to it.

Standard library only, and nothing of the project: the pure evaluation engine and the ML
core import it (import-linter allows them this module of capability_probe and no other).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Section(StrEnum):
    """Where a probe carries a field."""

    DEVICE = "device"
    NETWORK = "network"
    PLATFORM = "platform"
    BENCHMARK = "benchmark"


class Kind(StrEnum):
    """A field's type once normalised."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"  # free text, stripped, at most `max_length` characters
    ENUM = "enum"  # one of `choices`


NUMBERS = frozenset({Kind.INT, Kind.FLOAT})
TEXTS = frozenset({Kind.STR, Kind.ENUM})


class Role(StrEnum):
    """What a field is for (see the module's docstring)."""

    CLUSTERED = "clustered"
    DESCRIPTIVE = "descriptive"
    RUNTIME_HINT = "runtime hint"


class Rounding(StrEnum):
    """How a number in the accepted range is rounded, before the cap (`clamp`)."""

    NONE = "none"
    POWER_OF_TWO = "power of two"  # the power of two at or below (device memory)
    TRUNCATE = "truncate"  # int(x)
    PLACES = "places"  # round(x, by)
    MULTIPLE = "multiple"  # round(x / by) * by: RTT to 50 ms
    PARTS = "parts"  # round(x * by) / by: downlink to 1/20 Mbps (50 kbps)


EFFECTIVE_TYPES = ("slow-2g", "2g", "3g", "4g")  # the Network Information API's, slowest first
PRESSURE_STATES = ("nominal", "fair", "serious", "critical")  # the Compute Pressure API's
# The Network Information API's `type` (Chromium on Android and ChromeOS); native apps map
# their platform's transport onto it.
CONNECTION_TYPES = (
    "bluetooth",
    "cellular",
    "ethernet",
    "mixed",
    "none",
    "other",
    "unknown",
    "wifi",
    "wimax",
)
TEXT_LENGTH = 64
# The segment a client with saveData on is put in, by rule and outside the model; no learned
# segment may take its key. Learned segments' identities count from 1, so 0 is never taken.
SAVE_DATA_SEGMENT = "save-data"
SAVE_DATA_IDENTITY = 0
# The context attribute a stored profile brings with the rung of each ladder flag its probes
# have settled on (rollout/engine/settling.py): written by the server, never by a client.
SETTLED_RUNGS = "settledRungs"


@dataclass(frozen=True, slots=True)
class CapabilityField:
    """One capability field. `column` None: a runtime hint the profile keeps only in its
    `runtime` object (under the wire name), never as a column."""

    wire: str
    section: Section
    kind: Kind
    role: Role
    column: str | None
    # Its name inside the probe's section, when not the wire name (benchmark.ms).
    probe_name: str = ""
    # An evaluation-context attribute (a stored profile's column read back as `wire`).
    attribute: bool = True
    # Reporting it shows the client has been profiled: the engine serves the safe rung to a
    # context with none of these. Less runtime hints, the client API's "capability inline".
    profiling_signal: bool = False
    # One of the population columns segmentation reads (segments.selectors.profile_columns).
    population: bool = False
    # Normalisation of numbers: the range accepted (outside it a probe is refused), the
    # rounding, then the cap.
    accepted: tuple[float, float] | None = None
    rounding: Rounding = Rounding.NONE
    rounding_by: float = 0
    clamp: tuple[float | None, float | None] = (None, None)
    # Normalisation of text: the values allowed (ENUM), the longest accepted (STR).
    choices: tuple[str, ...] = ()
    max_length: int = 0
    # How people read it (the console's centroid charts), and its unit.
    label: str = ""
    unit: str = ""

    @property
    def probe_key(self) -> str:
        """The field's name inside its probe section."""
        return self.probe_name or self.wire

    @property
    def stored_as(self) -> str:
        """Where a probe's value lands: the profile column, or the runtime object's key."""
        return self.column if self.column is not None else self.wire

    def quantise(self, value: float) -> int | float:
        """A number already within `accepted`, rounded and capped the way it is stored."""
        number: int | float = value
        by = self.rounding_by
        if self.rounding is Rounding.POWER_OF_TWO:
            number = 2 ** math.floor(math.log2(value) + 1e-9)
        elif self.rounding is Rounding.TRUNCATE:
            number = int(value)
        elif self.rounding is Rounding.PLACES:
            number = round(value, int(by))
        elif self.rounding is Rounding.MULTIPLE:
            number = round(value / by) * by
        elif self.rounding is Rounding.PARTS:
            number = round(value * by) / by
        low, high = self.clamp
        if low is not None:
            number = max(low, number)
        if high is not None:
            number = min(high, number)
        return int(number) if self.kind is Kind.INT else float(number)


def _flag(
    wire: str,
    section: Section,
    role: Role,
    column: str | None,
    *,
    profiling_signal: bool = False,
    population: bool = False,
    label: str = "",
) -> CapabilityField:
    return CapabilityField(
        wire,
        section,
        Kind.BOOL,
        role,
        column,
        profiling_signal=profiling_signal,
        population=population,
        label=label,
    )


def _text(wire: str, column: str, *, population: bool = False) -> CapabilityField:
    return CapabilityField(
        wire,
        Section.PLATFORM,
        Kind.STR,
        Role.DESCRIPTIVE,
        column,
        population=population,
        max_length=TEXT_LENGTH,
    )


_D, _N, _P, _B = Section.DEVICE, Section.NETWORK, Section.PLATFORM, Section.BENCHMARK
_CLUSTERED, _DESCRIPTIVE, _HINT = Role.CLUSTERED, Role.DESCRIPTIVE, Role.RUNTIME_HINT

# Browsers report memory in powers of two (Chrome: up to 32 on desktop); native apps report
# the total RAM. Both are quantised the browser's way: the power of two at or below, capped.
MEMORY_GB = CapabilityField(
    "memoryGb",
    _D,
    Kind.FLOAT,
    _CLUSTERED,
    "memory_gb",
    profiling_signal=True,
    population=True,
    accepted=(0.01, 4096),
    rounding=Rounding.POWER_OF_TWO,
    clamp=(0.25, 32.0),
    label="memory",
    unit="GB",
)
# WebKit clamps hardwareConcurrency to 4 or 8 (iPhones report 4): shown, not clustered.
CORES = CapabilityField(
    "cores",
    _D,
    Kind.INT,
    _DESCRIPTIVE,
    "cores",
    profiling_signal=True,
    population=True,
    accepted=(1, 1024),
    rounding=Rounding.TRUNCATE,
    clamp=(None, 64),
    label="cores",
)
# The reference workload's time (the probe's benchmark.ms): the most honest signal.
BENCHMARK_MS = CapabilityField(
    "benchmarkMs",
    _B,
    Kind.FLOAT,
    _CLUSTERED,
    "benchmark_ms",
    probe_name="ms",
    profiling_signal=True,
    population=True,
    accepted=(0.001, 600_000),
    rounding=Rounding.PLACES,
    rounding_by=2,
    label="benchmark",
    unit="ms",
)
BENCHMARK_WORKLOAD = CapabilityField(
    "benchmarkWorkload",
    _B,
    Kind.STR,
    _DESCRIPTIVE,
    "benchmark_workload",
    probe_name="workload",
    attribute=False,
    max_length=TEXT_LENGTH,
)
WEBGPU = _flag(
    "webgpu", _D, _CLUSTERED, "webgpu", profiling_signal=True, population=True, label="WebGPU"
)
SHADER_F16 = _flag("shaderF16", _D, _CLUSTERED, "shader_f16", population=True, label="shader f16")
WEBNN = _flag("webnn", _D, _DESCRIPTIVE, "webnn", population=True)
WASM_SIMD = _flag("wasmSimd", _D, _DESCRIPTIVE, "wasm_simd", population=True)
WASM_THREADS = _flag("wasmThreads", _D, _DESCRIPTIVE, "wasm_threads")
STORAGE_GB = CapabilityField(
    "storageGb",
    _D,
    Kind.FLOAT,
    _DESCRIPTIVE,
    "storage_gb",
    population=True,
    accepted=(0, 1e6),
    rounding=Rounding.PLACES,
    rounding_by=1,
)
MEDIA_PERFORMANCE_CLASS = CapabilityField(
    "mediaPerformanceClass",
    _D,
    Kind.INT,
    _DESCRIPTIVE,
    "media_performance_class",
    accepted=(0, 100),
    rounding=Rounding.TRUNCATE,
)
NPU = _flag("npu", _D, _DESCRIPTIVE, "npu")
BATTERY_LEVEL = CapabilityField(
    "batteryLevel",
    _D,
    Kind.FLOAT,
    _HINT,
    None,
    accepted=(0, 1),
    rounding=Rounding.PLACES,
    rounding_by=2,
)
CHARGING = _flag("charging", _D, _HINT, None)
# Free space for a model download (GiB): the origin's quota less its usage in a browser
# (navigator.storage.estimate()), the volume's free space in a native app. A download
# condition (rollout/engine/edge_models.py), so a hint: it changes with every download.
STORAGE_FREE_GB = CapabilityField(
    "storageFreeGb",
    _D,
    Kind.FLOAT,
    _HINT,
    None,
    accepted=(0, 1e6),
    rounding=Rounding.PLACES,
    rounding_by=1,
)
COMPUTE_PRESSURE = CapabilityField(
    "computePressure", _D, Kind.ENUM, _HINT, None, choices=PRESSURE_STATES
)
# Chromium only, and derived from the RTT estimate: the measured RTT is clustered instead.
EFFECTIVE_TYPE = CapabilityField(
    "effectiveType",
    _N,
    Kind.ENUM,
    _DESCRIPTIVE,
    "effective_type",
    profiling_signal=True,
    population=True,
    choices=EFFECTIVE_TYPES,
)
# Chromium rounds RTT to 50 ms and caps it at 3 s.
RTT_MS = CapabilityField(
    "rttMs",
    _N,
    Kind.INT,
    _CLUSTERED,
    "rtt_ms",
    profiling_signal=True,
    population=True,
    accepted=(0, 600_000),
    rounding=Rounding.MULTIPLE,
    rounding_by=50,
    clamp=(None, 3000),
    label="RTT",
    unit="ms",
)
# Chromium rounds downlink to 50 kbps and caps it at 10 Mbps.
DOWNLINK_MBPS = CapabilityField(
    "downlinkMbps",
    _N,
    Kind.FLOAT,
    _CLUSTERED,
    "downlink_mbps",
    profiling_signal=True,
    population=True,
    accepted=(0, 100_000),
    rounding=Rounding.PARTS,
    rounding_by=20,
    clamp=(None, 10.0),
    label="downlink",
    unit="Mbps",
)
# What probe.js measures itself, in every browser (docs/capability-signals.md, "Measured
# network"): the median round trip of several tiny requests to Edgeflags (the first, which
# pays for the connection, left out) and the throughput of a timed payload. RTT is rounded to
# 10 ms and downlink to 1/20 Mbps: finer figures would fingerprint a client and decide nothing.
# Requirements read them through `rttMs` and `downlinkMbps` (rollout/engine/estimates.py).
MEASURED_RTT_MS = CapabilityField(
    "measuredRttMs",
    _N,
    Kind.INT,
    _DESCRIPTIVE,
    "measured_rtt_ms",
    profiling_signal=True,
    population=True,
    accepted=(0, 600_000),
    rounding=Rounding.MULTIPLE,
    rounding_by=10,
    clamp=(None, 10_000),
    label="measured RTT",
    unit="ms",
)
MEASURED_RTT_SAMPLES = CapabilityField(
    "measuredRttSamples",
    _N,
    Kind.INT,
    _DESCRIPTIVE,
    "measured_rtt_samples",
    population=True,
    accepted=(1, 100),
    rounding=Rounding.TRUNCATE,
)
MEASURED_DOWNLINK_MBPS = CapabilityField(
    "measuredDownlinkMbps",
    _N,
    Kind.FLOAT,
    _DESCRIPTIVE,
    "measured_downlink_mbps",
    profiling_signal=True,
    population=True,
    accepted=(0, 100_000),
    rounding=Rounding.PARTS,
    rounding_by=20,
    clamp=(None, 1000.0),
    label="measured downlink",
    unit="Mbps",
)
MEASURED_DOWNLINK_SAMPLES = CapabilityField(
    "measuredDownlinkSamples",
    _N,
    Kind.INT,
    _DESCRIPTIVE,
    "measured_downlink_samples",
    population=True,
    accepted=(1, 100),
    rounding=Rounding.TRUNCATE,
)
# Requirements read a measurement (instead of the browser's estimate) from this many samples.
MIN_RTT_SAMPLES = 3
MIN_DOWNLINK_SAMPLES = 1
# A measurement and the number of samples behind it travel together.
MEASUREMENTS: tuple[tuple[CapabilityField, CapabilityField], ...] = (
    (MEASURED_RTT_MS, MEASURED_RTT_SAMPLES),
    (MEASURED_DOWNLINK_MBPS, MEASURED_DOWNLINK_SAMPLES),
)
# The user asked for less data: a hint (it takes both on-device and cloud rungs away, and
# puts the client in the save-data segment), stored so segmentation can apply that rule.
SAVE_DATA = _flag("saveData", _N, _HINT, "save_data", profiling_signal=True, population=True)
ONLINE = _flag("online", _N, _HINT, None)
# Download conditions (Wi-Fi, not metered): what the link is, not how fast it is.
CONNECTION_TYPE = CapabilityField(
    "connectionType", _N, Kind.ENUM, _HINT, None, choices=CONNECTION_TYPES
)
# Native apps only (Android's isActiveNetworkMetered, Apple's isExpensive/isConstrained).
METERED = _flag("metered", _N, _HINT, None)
OS = _text("os", "os", population=True)
OS_VERSION = _text("osVersion", "os_version")
BROWSER = _text("browser", "browser", population=True)
BROWSER_VERSION = _text("browserVersion", "browser_version")
APP_VERSION = _text("appVersion", "app_version")
MOBILE = _flag("mobile", _P, _DESCRIPTIVE, "mobile", population=True, label="mobile")

# Every field. Within a probe section, in the order the probe schema documents them.
FIELDS: tuple[CapabilityField, ...] = (
    MEMORY_GB,
    CORES,
    BENCHMARK_MS,
    BENCHMARK_WORKLOAD,
    WEBGPU,
    SHADER_F16,
    WEBNN,
    WASM_SIMD,
    WASM_THREADS,
    STORAGE_GB,
    MEDIA_PERFORMANCE_CLASS,
    NPU,
    BATTERY_LEVEL,
    CHARGING,
    STORAGE_FREE_GB,
    COMPUTE_PRESSURE,
    EFFECTIVE_TYPE,
    RTT_MS,
    DOWNLINK_MBPS,
    MEASURED_RTT_MS,
    MEASURED_RTT_SAMPLES,
    MEASURED_DOWNLINK_MBPS,
    MEASURED_DOWNLINK_SAMPLES,
    SAVE_DATA,
    ONLINE,
    CONNECTION_TYPE,
    METERED,
    OS,
    OS_VERSION,
    BROWSER,
    BROWSER_VERSION,
    APP_VERSION,
    MOBILE,
)
BY_WIRE: dict[str, CapabilityField] = {field.wire: field for field in FIELDS}


def in_section(section: Section) -> tuple[CapabilityField, ...]:
    """The fields a probe carries in `section`, in order."""
    return tuple(field for field in FIELDS if field.section is section)


# Profile column -> the attribute name clients, the engine and the segmentation model use.
ATTRIBUTE_COLUMNS: dict[str, str] = {
    field.column: field.wire for field in FIELDS if field.column is not None and field.attribute
}
# The profile's text columns (a missing signal is stored as "", not NULL).
TEXT_COLUMNS: tuple[str, ...] = tuple(
    field.column for field in FIELDS if field.column is not None and field.kind in TEXTS
)
# The segmentation features' sources.
CLUSTERED: tuple[CapabilityField, ...] = tuple(f for f in FIELDS if f.role is Role.CLUSTERED)
RUNTIME_HINTS: frozenset[str] = frozenset(f.wire for f in FIELDS if f.role is Role.RUNTIME_HINT)
# A context carrying none of these has not been profiled (no probe, nothing inline).
PROFILING_SIGNALS: tuple[str, ...] = tuple(f.wire for f in FIELDS if f.profiling_signal)
# A context carrying any of these brings its capability inline (the stored profile is not
# read). Runtime hints are left out: they say something about this request only.
INLINE_CAPABILITY: frozenset[str] = frozenset(PROFILING_SIGNALS) - RUNTIME_HINTS
# The population columns segmentation reads from profiles.
POPULATION: tuple[CapabilityField, ...] = tuple(f for f in FIELDS if f.population)
