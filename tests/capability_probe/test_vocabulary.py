"""One capability vocabulary: every list of capability fields in the code is the table's.

Each consumer (the probe schema, the profile model, segmentation's columns and features, the
engine's ladder, the client API, the console) is held to capability_probe/vocabulary.py, so
a field added, renamed or re-roled there and not in one of them fails here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from capability_probe import vocabulary
from capability_probe.vocabulary import (
    BY_WIRE,
    CLUSTERED,
    FIELDS,
    INLINE_CAPABILITY,
    NUMBERS,
    POPULATION,
    PRESSURE_STATES,
    PROFILING_SIGNALS,
    RUNTIME_HINTS,
    SAVE_DATA,
    SAVE_DATA_SEGMENT,
    TEXTS,
    Kind,
    Role,
    Section,
)

REPO = Path(__file__).resolve().parents[2]
PROJECT = {"config", "ops", "rollout", "segments", "capability_probe", "api", "console", "demo"}


def _wires(fields: Iterable[vocabulary.CapabilityField]) -> set[str]:
    return {f.wire for f in fields}


# --- the table itself ---------------------------------------------------------------------


def test_table__names_and_columns__unique() -> None:
    columns = [f.column for f in FIELDS if f.column is not None]

    assert [w for w, n in Counter(f.wire for f in FIELDS).items() if n > 1] == []
    assert [c for c, n in Counter(columns).items() if n > 1] == []
    for section in Section:
        keys = [f.probe_key for f in vocabulary.in_section(section)]
        assert len(keys) == len(set(keys)), section


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.wire)
def test_table__each_field__normalisation_fits_its_kind(field: vocabulary.CapabilityField) -> None:
    if field.kind in NUMBERS:
        assert field.accepted is not None
        assert field.accepted[0] < field.accepted[1]
    else:
        assert field.accepted is None
        assert field.rounding is vocabulary.Rounding.NONE
    assert bool(field.choices) == (field.kind is Kind.ENUM)
    assert (field.max_length > 0) == (field.kind is Kind.STR)


def test_table__roles__clustered_stored_hints_never_clustered() -> None:
    for field in FIELDS:
        if field.role is Role.CLUSTERED:
            assert field.column is not None, field.wire
            assert field.population, field.wire
            assert field.attribute, field.wire
        if field.column is None:
            # Only runtime hints live outside the profile's columns (in its runtime object).
            assert field.role is Role.RUNTIME_HINT, field.wire
    assert SAVE_DATA.role is Role.RUNTIME_HINT
    assert SAVE_DATA.column == "save_data"  # stored: segmentation applies the save-data rule
    assert SAVE_DATA.wire not in _wires(CLUSTERED)
    assert {
        "batteryLevel",
        "charging",
        "computePressure",
        "connectionType",
        "metered",
        "online",
        "saveData",
        "storageFreeGb",
    } == RUNTIME_HINTS


def test_table__inline_capability__the_profiling_signals_less_the_hints() -> None:
    assert set(PROFILING_SIGNALS) <= set(BY_WIRE)
    assert SAVE_DATA.wire in PROFILING_SIGNALS
    assert set(PROFILING_SIGNALS) - RUNTIME_HINTS == INLINE_CAPABILITY
    assert INLINE_CAPABILITY.isdisjoint(RUNTIME_HINTS)
    assert {
        "memoryGb",
        "cores",
        "webgpu",
        "benchmarkMs",
        "rttMs",
        "downlinkMbps",
        "measuredRttMs",
        "measuredDownlinkMbps",
        "effectiveType",
    } == INLINE_CAPABILITY


@pytest.mark.parametrize(
    ("field", "raw", "stored"),
    [
        (vocabulary.MEMORY_GB, 12, 8.0),  # the power of two at or below
        (vocabulary.MEMORY_GB, 0.01, 0.25),
        (vocabulary.MEMORY_GB, 4096, 32.0),
        (vocabulary.CORES, 7.9, 7),
        (vocabulary.CORES, 1000, 64),
        (vocabulary.BENCHMARK_MS, 21.234, 21.23),
        (vocabulary.STORAGE_GB, 1.26, 1.3),
        (vocabulary.MEDIA_PERFORMANCE_CLASS, 33.9, 33),
        (vocabulary.BATTERY_LEVEL, 0.456, 0.46),
        (vocabulary.RTT_MS, 73, 50),  # Chromium: 50 ms steps, capped at 3 s
        (vocabulary.RTT_MS, 76, 100),
        (vocabulary.RTT_MS, 90_000, 3000),
        (vocabulary.DOWNLINK_MBPS, 1.26, 1.25),  # 50 kbps steps, capped at 10 Mbps
        (vocabulary.DOWNLINK_MBPS, 23.7, 10.0),
    ],
)
def test_quantise__browser_rounding_and_caps(
    field: vocabulary.CapabilityField, raw: float, stored: float
) -> None:
    value = field.quantise(raw)

    assert value == stored
    assert type(value) is (int if field.kind is Kind.INT else float)


def test_vocabulary__standard_library_only() -> None:
    tree = ast.parse((REPO / "capability_probe" / "vocabulary.py").read_text())
    imported = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    code = (
        "import sys, capability_probe.vocabulary; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()

    assert imported - {"__future__"} <= set(sys.stdlib_module_names)
    assert set(loaded) & (PROJECT | {"django", "numpy"}) == {"capability_probe"}


# --- the probe schema ---------------------------------------------------------------------


def test_probe_schema__sections__the_tables_fields() -> None:
    from capability_probe.schema import FIELDS as PROBE_FIELDS
    from capability_probe.schema import TOP_LEVEL

    for section in (Section.DEVICE, Section.NETWORK, Section.PLATFORM):
        assert set(PROBE_FIELDS[section.value]) == _wires(vocabulary.in_section(section))
    assert set(PROBE_FIELDS) | {Section.BENCHMARK.value} == {s.value for s in Section}
    assert {f.probe_key for f in vocabulary.in_section(Section.BENCHMARK)} == {"ms", "workload"}
    assert {s.value for s in Section} <= TOP_LEVEL


def test_probe_schema__every_field_sent__stored_where_and_as_the_table_says() -> None:
    from capability_probe.schema import parse_probe

    sample = {Kind.INT: 12, Kind.FLOAT: 12, Kind.BOOL: True, Kind.STR: " text "}
    body: dict[str, dict[str, object]] = {}
    for field in FIELDS:
        value = field.choices[-1] if field.kind is Kind.ENUM else sample[field.kind]
        if field is vocabulary.BATTERY_LEVEL:
            value = 0.5
        body.setdefault(field.section.value, {})[field.probe_key] = value

    probe = parse_probe({"probeId": "p-1", "clientId": "c-1", **body})

    stored = {**probe.profile, **probe.runtime}
    assert set(probe.profile) == {f.column for f in FIELDS if f.column is not None}
    assert set(probe.runtime) == {f.wire for f in FIELDS if f.column is None}
    python_type = {Kind.INT: int, Kind.FLOAT: float, Kind.BOOL: bool, Kind.STR: str}
    for field in FIELDS:
        assert type(stored[field.stored_as]) is python_type.get(field.kind, str), field.wire


def test_openapi__probe_field_types__the_tables_kinds() -> None:
    from api.openapi import _PROBE

    json_type = {Kind.INT: "number", Kind.FLOAT: "number", Kind.BOOL: "boolean"}
    for field in FIELDS:
        documented = _PROBE["properties"][field.section.value]["properties"][field.probe_key]
        assert documented["type"] == json_type.get(field.kind, "string"), field.wire
        assert documented.get("enum", list(field.choices)) == list(field.choices)


# --- the profile ---------------------------------------------------------------------------


def test_profile_model__capability_columns__the_tables_columns_of_their_kinds() -> None:
    from capability_probe.models import ATTRIBUTE_NAMES, BOOKKEEPING_COLUMNS, ClientProfile

    model_fields = {
        f.name: f for f in ClientProfile._meta.fields if f.name not in BOOKKEEPING_COLUMNS
    }
    internal_types = {
        Kind.INT: {"PositiveSmallIntegerField", "PositiveIntegerField"},
        Kind.FLOAT: {"FloatField"},
        Kind.BOOL: {"BooleanField"},
        Kind.STR: {"CharField"},
        Kind.ENUM: {"CharField"},
    }

    assert set(model_fields) == {f.column for f in FIELDS if f.column is not None}
    for field in FIELDS:
        if field.column is None:
            continue
        column = model_fields[field.column]
        assert column.get_internal_type() in internal_types[field.kind], field.wire
        if field.kind in TEXTS:
            longest = max([field.max_length, *(len(c) for c in field.choices)])
            assert column.max_length >= longest, field.wire
    assert {
        f.column: f.wire for f in FIELDS if f.column is not None and f.attribute
    } == ATTRIBUTE_NAMES
    assert [f.wire for f in FIELDS if f.column is not None and not f.attribute] == [
        "benchmarkWorkload"
    ]


def test_profile_bulk_load__text_columns__the_tables_text_columns() -> None:
    from capability_probe.models import ClientProfile

    char_columns = {
        f.name
        for f in ClientProfile._meta.fields
        if f.get_internal_type() == "CharField" and f.name != "client_hash"
    }

    assert set(vocabulary.TEXT_COLUMNS) == char_columns


# --- segmentation ----------------------------------------------------------------------------


def test_ml_features__sources__the_clustered_fields() -> None:
    from segments.ml.features import DEFAULT_FEATURE_SPEC, EFFECTIVE_TYPE_LEVELS

    assert {f["source"] for f in DEFAULT_FEATURE_SPEC} == _wires(CLUSTERED)
    assert list(EFFECTIVE_TYPE_LEVELS) == list(vocabulary.EFFECTIVE_TYPES)


def test_engine_capability_model__reads_each_source_as_its_kind() -> None:
    from rollout.engine.capability import _source_kinds
    from segments.ml.features import DEFAULT_FEATURE_SPEC

    kinds = _source_kinds(DEFAULT_FEATURE_SPEC)
    expected = {Kind.INT: "number", Kind.FLOAT: "number", Kind.BOOL: "flag", Kind.ENUM: "text"}

    assert {source: expected[BY_WIRE[source].kind] for source in kinds} == kinds


def test_population_columns__the_tables_population_fields() -> None:
    from segments import selectors
    from segments.ml.population import generate_population

    read = {**selectors.NUMERIC, **selectors.BOOLEAN, **selectors.TEXT}

    assert read == {f.column: f.wire for f in POPULATION}
    assert set(selectors.TEXT.values()) == {f.wire for f in POPULATION if f.kind in TEXTS}
    assert set(generate_population(50, seed=1).columns) == _wires(POPULATION)


def test_centroid_profile__measurements__the_clustered_numbers() -> None:
    import numpy as np

    from console.segments import CENTROID_FIELDS
    from segments.ml.population import generate_population
    from segments.ml.segmentation import SAVE_DATA_KEY, centroid_profile

    columns = generate_population(50, seed=1).columns
    profile = centroid_profile(columns, np.ones(50, dtype=bool))
    numbers = [f.wire for f in CLUSTERED if f.kind in NUMBERS]

    assert [name for name in profile if name in BY_WIRE] == numbers
    assert list(CENTROID_FIELDS)[: len(numbers)] == numbers
    assert set(profile) - {"clients"} <= set(CENTROID_FIELDS)
    assert SAVE_DATA_KEY == SAVE_DATA_SEGMENT


def test_save_data_segment__one_key_everywhere() -> None:
    from rollout.engine import capability
    from segments import services

    assert capability.SAVE_DATA_SEGMENT is SAVE_DATA_SEGMENT
    assert services.SAVE_DATA_SEGMENT is SAVE_DATA_SEGMENT


# --- the engine and the client API ---------------------------------------------------------------


def test_engine_ladder__profiling_signals_and_hints__the_tables() -> None:
    from rollout.engine import ladder

    assert ladder.CAPABILITY_FIELDS == PROFILING_SIGNALS
    assert set(PRESSURE_STATES) >= ladder.PRESSURE_TOO_HIGH
    from rollout.engine.edge_models import DOWNLOAD_SIGNALS

    hints = {ladder._BATTERY, ladder._CHARGING, ladder._PRESSURE, ladder._ONLINE}
    # The rest exist for model download conditions, which requirements read by name.
    assert hints | {ladder._SAVE_DATA} | DOWNLOAD_SIGNALS == RUNTIME_HINTS


def test_ladder_requirement_names__in_the_table() -> None:
    from demo.data import LEAD_SUMMARY_LADDER, SMART_COMPOSE_LADDER

    names = {
        requirement["contextName"]
        for ladder in (SMART_COMPOSE_LADDER, LEAD_SUMMARY_LADDER)
        for rung in ladder
        for requirement in rung.get("requirements", [])
    }

    assert names
    assert names <= set(BY_WIRE)
    assert names <= INLINE_CAPABILITY  # a rung requires capability, never a hint


def test_client_api__inline_capability__the_tables() -> None:
    from api import client

    assert client.INLINE_CAPABILITY == INLINE_CAPABILITY
    assert SAVE_DATA.wire not in client.INLINE_CAPABILITY
