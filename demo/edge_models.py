"""The demo's on-device models: two versions of smart-compose's reply model, with a delta.

The artifacts are real files served with the demo's static files, so a browser can fetch one
and check its SHA-256; their URLs name the web process `make run` starts.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from demo.rollouts import DEMO, HISTORY_HOURS
from rollout.drift import drift_tick
from rollout.edge_models import model_version_register, model_version_serve
from rollout.engine.capability import SAVE_DATA_IDENTITY
from rollout.histogram import INFERENCE_BINS, INFERENCE_EDGES_MS
from rollout.models import Environment, Flag, FlagState, MetricBucket, ModelVersion
from rollout.selectors import segment_keys
from rollout.services import fields_of, row_save

ARTIFACTS = Path(__file__).resolve().parent / "static" / "edgeflags" / "models"
FLAG = "smart-compose"
MODEL = "tiny-reply"
CURRENT, NEXT = "2.0.0", "3.0.0"
RUN_REQUIREMENTS = [{"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"}]
# Fetch only off metered links (native apps say; browsers never report metered).
DOWNLOAD_REQUIREMENTS = [{"contextName": "metered", "operator": "NOT_IN", "values": ["true"]}]


def _url(name: str) -> str:
    return (
        f"http://{settings.EDGEFLAGS_HOST}:{settings.EDGEFLAGS_PORT}/static/edgeflags/models/{name}"
    )


def _artifact(name: str) -> dict[str, Any]:
    data = (ARTIFACTS / name).read_bytes()
    return {"url": _url(name), "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _register(flag: Flag, version: str, **extra: Any) -> ModelVersion:
    return model_version_register(
        flag=flag,
        name=MODEL,
        version=version,
        format=ModelVersion.Format.ONNX,
        requirements=RUN_REQUIREMENTS,
        download_requirements=DOWNLOAD_REQUIREMENTS,
        reason="demo data",
        **_artifact(f"{MODEL}-{version}.bin"),
        **extra,
    )


def demo_models_load(environments: list[Environment]) -> list[str]:
    """Register both versions (v3 with a delta from v2) and serve v2 in `environments`."""
    flag = Flag.objects.get(key=FLAG)
    if ModelVersion.objects.filter(flag=flag).exists():
        return []
    current = _register(flag, CURRENT, notes="int8, 4-bit embeddings")
    delta = _artifact(f"{MODEL}-{CURRENT}-{NEXT}.delta")
    _register(
        flag,
        NEXT,
        delta_from=CURRENT,
        delta_url=delta["url"],
        delta_size_bytes=delta["size_bytes"],
        delta_sha256=delta["sha256"],
        notes="distilled on 30 days of accepted replies",
    )
    for environment in environments:
        state = FlagState.objects.get(flag=flag, environment=environment)
        model_version_serve(state=state, version=current, reason="demo data")
    return [f"model versions {MODEL} {CURRENT} and {NEXT} (with a delta) of {FLAG}"]


# --- 72 hours of on-device telemetry: the model health page, the cost ledger and a drift ---

CLOUD_COST_PER_1000 = Decimal("0.40")  # what 1,000 cloud inferences of smart compose cost
FRESHNESS_LIMIT_HOURS = 48.0
EDGE_CLIENTS_PER_HOUR = 300  # per segment and version
CLOUD_CLIENTS_PER_HOUR = 120
INFERENCES_PER_CLIENT = 20
# Per version: median inference ms, energy per inference (mJ), acceptance of its suggestions.
PROFILE = {CURRENT: (38.0, 46.0, 0.30), NEXT: (31.0, 39.0, 0.33)}
DECAYED_ACCEPTANCE = 0.27  # v3 in the ramped segment after DECAY_HOUR: the drift the demo shows
DECAY_HOUR = 40


def _quality(
    rng: np.random.Generator, clients: int, median_ms: float, energy: float, acceptance: float
) -> dict[str, Any]:
    """What `clients` edge clients of one hour add to MetricBucket's columns."""
    times = rng.lognormal(np.log(median_ms), 0.45, size=clients * INFERENCES_PER_CLIENT)
    # inference_bin for every time at once: the first edge at or above it (millions of times).
    counts = np.bincount(
        np.searchsorted(INFERENCE_EDGES_MS, times, side="left"), minlength=len(INFERENCE_BINS)
    )
    columns: dict[str, Any] = {
        name: int(count) for name, count in zip(INFERENCE_BINS, counts, strict=True)
    }
    shares = rng.binomial(4, rng.beta(20 * acceptance, 20 * (1 - acceptance), clients)) / 4
    per_client_energy = energy * rng.lognormal(0, 0.25, clients)
    freshness = rng.gamma(4.0, 6.0 / 4.0, clients)
    raters = clients // 3  # a third answer the micro-survey; happier when they accept more
    ratings = np.clip(np.rint(3.4 + 2.0 * shares[:raters] + rng.normal(0, 0.7, raters)), 1, 5)
    columns.update(
        clients=clients,
        exposures=clients,
        failures=int(rng.binomial(clients, 0.004)),
        inference_ms_n=int(times.size),
        inference_ms_sum=float(times.sum()),
    )
    for metric, values in (
        ("acceptance", shares),
        ("energy", per_client_energy),
        ("freshness", freshness),
        ("rating", ratings),
    ):
        columns[f"{metric}_n"] = int(values.size)
        columns[f"{metric}_sum"] = float(values.sum())
        columns[f"{metric}_sumsq"] = float(np.square(values).sum())
    return columns


def _updates(
    rng: np.random.Generator, clients: int, full_size: int, delta_size: int
) -> dict[str, int]:
    """New v3 clients fetching it: most by delta from v2 (a few deltas fail), some in full."""
    deltas = int(rng.binomial(clients, 0.7))
    failed = int(rng.binomial(deltas, 0.03))
    full = clients - deltas + failed  # a failed delta falls back to the full artifact
    return {
        "updates_delta": deltas,
        "updates_delta_failed": failed,
        "update_bytes_delta": deltas * delta_size,
        "updates_full": full,
        "update_bytes_full": full * full_size,
    }


def _bucket(
    state: FlagState,
    segment: int,
    hour: datetime,
    rung: str,
    version: str,
    arm: str,
    columns: dict[str, Any],
) -> MetricBucket:
    return MetricBucket(
        environment_id=state.environment_id,
        flag=FLAG,
        segment_identity=segment,
        arm=arm,
        rung=rung,
        model_version=version,
        minute=hour,
        **columns,
    )


def _history(
    state: FlagState, ramped: int | None, start: datetime, rng: np.random.Generator
) -> list[MetricBucket]:
    """HISTORY hours of one environment: v2 on the edge rung everywhere, the cloud rung's
    calls, and (in `ramped`) v3 for the treatment arm, decaying after DECAY_HOUR."""
    sizes = dict(ModelVersion.objects.filter(flag__key=FLAG).values_list("version", "size_bytes"))
    delta_size = ModelVersion.objects.get(flag__key=FLAG, version=NEXT).delta_size_bytes or 0
    identities = [i for i in segment_keys() if i != SAVE_DATA_IDENTITY]
    rows = []
    for hour in range(HISTORY_HOURS):
        at = start + timedelta(hours=hour, minutes=30)
        for segment in identities:
            treatment = segment == ramped
            arm = "control" if ramped is not None else "treatment"
            rows.append(
                _bucket(
                    state,
                    segment,
                    at,
                    "edge",
                    CURRENT,
                    arm,
                    _quality(rng, EDGE_CLIENTS_PER_HOUR, *PROFILE[CURRENT]),
                )
            )
            cloud = _quality(rng, CLOUD_CLIENTS_PER_HOUR, 420.0, 0.0, 0.29)
            cloud.update(energy_n=0, energy_sum=0.0, energy_sumsq=0.0)
            rows.append(_bucket(state, segment, at, "cloud", "", "none", cloud))
            if treatment:
                median_ms, energy, acceptance = PROFILE[NEXT]
                if hour >= DECAY_HOUR:
                    acceptance = DECAYED_ACCEPTANCE
                columns = _quality(rng, EDGE_CLIENTS_PER_HOUR, median_ms, energy, acceptance)
                if hour < 6:
                    columns.update(
                        _updates(rng, EDGE_CLIENTS_PER_HOUR // 6, sizes[NEXT], delta_size)
                    )
                rows.append(_bucket(state, segment, at, "edge", NEXT, "treatment", columns))
    return rows


def demo_model_story_load(now: datetime) -> list[str]:
    """v3 ramped in one staging segment, 72 h of on-device telemetry in production and staging,
    the drift controller run over it hour by hour (v3's acceptance decays in the ramped segment:
    a retraining request is filed), and the flag's cloud price for the cost ledger."""
    flag = Flag.objects.get(key=FLAG)
    if MetricBucket.objects.filter(flag=FLAG).exclude(model_version="").exists():
        return []
    before = fields_of(flag, ["cloud_cost_per_1000", "freshness_limit_hours"])
    flag.cloud_cost_per_1000 = CLOUD_COST_PER_1000
    flag.freshness_limit_hours = FRESHNESS_LIMIT_HOURS
    row_save(
        row=flag,
        actor=DEMO,
        before=before,
        changed=["cloud_cost_per_1000", "freshness_limit_hours"],
        reason="demo data",
    )
    staging = FlagState.objects.select_related("environment").get(
        flag=flag, environment__key="staging"
    )
    production = FlagState.objects.select_related("environment").get(
        flag=flag, environment__key="production"
    )
    start = now - timedelta(hours=HISTORY_HOURS)
    ramped = ramped_segment(staging)
    rng = np.random.default_rng(2027)
    MetricBucket.objects.bulk_create(
        _history(production, None, start, rng) + _history(staging, ramped, start, rng)
    )
    filed: list[str] = []
    for hour in range(1, HISTORY_HOURS + 1):
        filed += drift_tick(start + timedelta(hours=hour)).filed
    lines = [f"{HISTORY_HOURS} h of on-device telemetry of {FLAG} (production, staging)"]
    lines += [f"retraining request: {summary}" for summary in filed]
    return lines


def ramped_segment(state: FlagState) -> int | None:
    """The staging segment whose v3 rollout the demo advanced (the plan's first ramping one)."""
    row = state.rollout_plan.segments.filter(state="ramping").order_by("segment_identity").first()
    return row.segment_identity if row is not None else None
