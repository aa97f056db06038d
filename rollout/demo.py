"""Realistic demo data for `make run`, loaded idempotently by `manage.py load_demo`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from capability_probe.models import ClientProfile
from ops.services import periodic_tasks_ensure
from rollout.models import ApiKey, Environment, Flag, FlagState, Segment
from rollout.services import (
    api_key_create,
    environment_get_or_create,
    flag_create,
    flag_state_update,
    rule_create,
    segment_create,
)
from segments.models import SegmentationModel
from segments.population import population_write
from segments.services import segmentation_run

ENVIRONMENTS = ("production", "staging")

SEGMENTS: list[dict[str, Any]] = [
    {
        "key": "beta-testers",
        "description": "Customers who opted into early features",
        "constraints": [{"contextName": "beta", "operator": "IN", "values": ["true"]}],
    },
    {
        "key": "enterprise-eu",
        "description": "Enterprise plan in the EU",
        "constraints": [
            {"contextName": "plan", "operator": "IN", "values": ["enterprise"]},
            {"contextName": "region", "operator": "IN", "values": ["eu-west", "eu-central"]},
        ],
    },
]

# key, kind, description, tags, off value, production state
FLAGS: list[dict[str, Any]] = [
    {
        "key": "smart-compose",
        "kind": "boolean",
        "description": "AI reply suggestions in the lead inbox",
        "tags": ["ai", "edge"],
        "enabled": True,
        "rules": [
            {"description": "beta testers first", "segments": ["beta-testers"]},
            {
                "description": "25 % of clients on app ≥ 3.2",
                "rollout_percentage": 25,
                "constraints": [
                    {"contextName": "appVersion", "operator": "SEMVER_GTE", "value": "3.2.0"}
                ],
            },
        ],
    },
    {
        "key": "lead-scoring-model",
        "kind": "string",
        "description": "Which lead-scoring model ranks the pipeline",
        "tags": ["ai", "ml"],
        "off_value": "rules-v1",
        "enabled": True,
        "variants": [
            {"name": "gbm-v3", "weight": 800, "value": "gbm-v3"},
            {"name": "tiny-transformer", "weight": 200, "value": "tiny-transformer"},
        ],
        "rules": [{"description": "everyone, split 80/20", "rollout_percentage": 100}],
    },
    {
        "key": "predictive-typing-config",
        "kind": "object",
        "description": "Settings of the on-device predictive typing model",
        "tags": ["ai", "edge"],
        "off_value": {"enabled": False},
        "enabled": True,
        "variants": [
            {"name": "default", "weight": 1, "value": {"maxTokens": 8, "debounceMs": 120}}
        ],
        "rules": [{"description": "enterprise EU", "segments": ["enterprise-eu"]}],
    },
    {
        "key": "reply-temperature",
        "kind": "number",
        "description": "Sampling temperature of cloud reply generation",
        "tags": ["ai", "cloud"],
        "off_value": 0.7,
        "enabled": False,
    },
]


def _segment(key: str) -> Segment:
    return Segment.objects.get(key=key)


def _create_flag(spec: dict[str, Any], production: Environment) -> None:
    flag_create(
        key=spec["key"],
        kind=spec["kind"],
        description=spec["description"],
        tags=spec["tags"],
        off_value=spec.get("off_value"),
    )
    state = FlagState.objects.get(flag__key=spec["key"], environment=production)
    flag_state_update(state=state, enabled=spec["enabled"], variants=spec.get("variants", []))
    for rule in spec.get("rules", []):
        fields = {k: v for k, v in rule.items() if k != "segments"}
        rule_create(state=state, segments=[_segment(s) for s in rule.get("segments", [])], **fields)


def demo_load() -> list[str]:
    """Create whatever demo data is missing; return a line per thing created."""
    created = _flags_and_keys()
    if not ClientProfile.objects.exists():
        clients = settings.EDGEFLAGS_DEMO_CLIENTS
        population_write(clients=clients, seed=2026)
        created.append(f"{clients} synthetic capability profiles")
    if not SegmentationModel.objects.exists():
        run = segmentation_run(trigger="demo", seed=0)
        created.append(f"segmentation model v{run.model_version} ({run.k} segments)")
    return created


@transaction.atomic
def _flags_and_keys() -> list[str]:
    created = [f"periodic task {name}" for name in periodic_tasks_ensure()]
    for key in ENVIRONMENTS:
        _, new = environment_get_or_create(key=key)
        if new:
            created.append(f"environment {key}")
    for spec in SEGMENTS:
        if not Segment.objects.filter(key=spec["key"]).exists():
            segment_create(**spec)
            created.append(f"segment {spec['key']}")
    production = Environment.objects.get(key="production")
    for spec in FLAGS:
        if not Flag.objects.filter(key=spec["key"]).exists():
            _create_flag(spec, production)
            created.append(f"flag {spec['key']}")
    if not ApiKey.objects.filter(environment=production, scope=ApiKey.Scope.CLIENT).exists():
        _, raw_key = api_key_create(environment=production, scope="client", name="demo web app")
        created.append(f"client API key for production (shown once): {raw_key}")
    return created
