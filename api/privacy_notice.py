"""GET /api/v1/privacy: what Edgeflags collects about a client, why, where it is kept and for
how long — the text a consent UI renders.

Built from the capability vocabulary, the telemetry event types and the retention settings,
so it cannot drift from what intake accepts: a field added to the vocabulary appears here.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from capability_probe.schema import CONSENT_STATES
from capability_probe.vocabulary import FIELDS, CapabilityField, Role
from telemetry.schema import EVENT_TYPES

PURPOSE_OF_ROLE = {
    Role.CLUSTERED: "groups devices into capability segments and decides which rung of an "
    "AI feature the device can run",
    Role.DESCRIPTIVE: "decides which rung the device can run where a rung requires it, and "
    "describes segments to release managers",
    Role.RUNTIME_HINT: "decides, for this session, whether a model may be downloaded or run "
    "now (battery, network, storage)",
}
EVENT_PURPOSES = {
    "exposure": "counts who was served which rung, to compare treatment with control",
    "inference": "on-device inference time and failures: the rollout's latency and error "
    "guardrails",
    "crash": "the rollout's crash guardrail",
    "energy": "energy per inference, shown per segment and rung",
    "feedback": "the user's rating of the feature: the rollout's quality guardrail",
    "suggestion": "whether the user accepted the model's output: the model's quality and drift",
    "model_update": "whether model downloads and partial updates succeed, and their size",
    "freshness": "how old the on-device personalisation data is: retraining triggers",
}
CONSENT_MEANINGS = {
    "granted": "probes and telemetry may be stored as described here",
    "pending": "the user has not decided: nothing is stored; features still evaluate from what "
    "the page sends",
    "denied": "nothing is stored, and what was stored about the client is forgotten",
}


def _field(field: CapabilityField) -> dict[str, Any]:
    kept = "profile" if field.column is not None else "profile (runtime hints, never clustered)"
    entry: dict[str, Any] = {
        "name": f"{field.section.value}.{field.probe_key}",
        "purpose": PURPOSE_OF_ROLE[field.role],
        "keptIn": kept,
    }
    if field.label:
        entry["label"] = field.label
    if field.unit:
        entry["unit"] = field.unit
    return entry


def privacy_notice(environment: str) -> dict[str, Any]:
    """The document GET /api/v1/privacy answers for `environment`."""
    probe_days = settings.EDGEFLAGS_PROBE_RETENTION_DAYS
    metric_days = settings.EDGEFLAGS_METRIC_RETENTION_DAYS
    dedupe_hours = settings.EDGEFLAGS_EVENT_DEDUPE_S / 3600
    return {
        "environment": environment,
        "identity": {
            "name": "clientId / targetingKey",
            "keptAs": "a keyed hash (HMAC-SHA256 under a server secret); the raw id is never "
            "stored or logged",
        },
        "collected": {
            "probe": [_field(f) for f in FIELDS],
            "events": [{"type": t, "purpose": EVENT_PURPOSES[t]} for t in EVENT_TYPES],
        },
        "derived": [
            {
                "name": "capability segment",
                "from": "the probe's clustered fields",
                "purpose": "which rollout stage and rung the client gets",
            },
            {
                "name": "settled rungs",
                "from": "successive probes",
                "purpose": "keeps the client on one rung instead of flapping",
            },
            {
                "name": "per-minute aggregates",
                "from": "events, once folded",
                "purpose": "guardrails, drift and the console's charts; counts and sums per "
                "segment, arm and minute, with no client id",
            },
        ],
        "retention": [
            {
                "store": "profiles and probe receipts",
                "setting": "EDGEFLAGS_PROBE_RETENTION_DAYS",
                "days": probe_days,
                "after": "the last probe",
            },
            {
                "store": "raw event batches (the telemetry buffer)",
                "setting": None,
                "days": None,
                "after": "until folded into aggregates, normally within a minute",
            },
            {
                "store": "event ids (duplicate detection)",
                "setting": "EDGEFLAGS_EVENT_DEDUPE_S",
                "days": round(dedupe_hours / 24, 4),
                "after": "the event was received",
            },
            {
                "store": "per-minute aggregates (no client id)",
                "setting": "EDGEFLAGS_METRIC_RETENTION_DAYS",
                "days": metric_days,
                "after": "the minute they count",
            },
        ],
        "consent": {
            "states": [{"state": s, "meaning": CONSENT_MEANINGS[s]} for s in CONSENT_STATES],
            "sentAs": "the `consent` field of probes and event batches",
        },
        "erasure": "POST /api/v1/privacy/erase with the client id (a server key, from the "
        "customer's backend) erases the client's profile, receipts and cached copies",
    }
