"""Realistic demo data for `make run`, loaded idempotently by `manage.py load_demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from access.api_keys import api_key_create
from capability_probe.models import ClientProfile
from demo.edge_models import demo_model_story_load, demo_models_load
from demo.population import population_write
from demo.rollouts import DEMO_ENVIRONMENT, demo_rollouts_load
from ops.services import periodic_tasks_ensure
from rollout.models import ApiKey, Environment, Flag, FlagState, Segment
from rollout.services import (
    environment_get_or_create,
    flag_create,
    flag_ladder_set,
    flag_state_update,
    rule_create,
    segment_create,
)
from rollout.snapshots.publish import publish_batch
from rollout.snapshots.store import hash_api_key
from segments.models import SegmentationModel
from segments.services import segmentation_run

ENVIRONMENTS = ("production", "staging")
# The demo page's client key (a key of DEMO_ENVIRONMENT, whose flags start as production's).
DEMO_KEY_FILE = "demo_client_key"
# The traffic simulator's production client key (a file in var/, like the generated secret).
TRAFFIC_KEY_FILE = "traffic_client_key"


class DemoNotLoaded(Exception):
    """The demo page's key is missing or revoked: `manage.py load_demo` makes a new one."""


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
TEMPLATES = [
    "Thanks for reaching out — I'll get back to you today.",
    "Happy to set up a call. Does Thursday at 10:00 work?",
    "Here is the pricing overview you asked for.",
]
SMART_COMPOSE_LADDER: list[dict[str, Any]] = [
    {
        "key": "edge",
        "runs_on": "device",
        "ui_state": {
            "component": "SmartCompose",
            "copy": {"title": "Smart compose", "badge": "On-device"},
            "options": {"model": "tiny-reply-v1", "maxTokens": 48},
        },
        "requirements": [
            {"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"},
            {"contextName": "benchmarkMs", "operator": "NUM_LTE", "value": "60"},
            {"contextName": "webgpu", "operator": "IN", "values": ["true"]},
        ],
    },
    {
        "key": "cloud",
        "runs_on": "cloud",
        "ui_state": {
            "component": "SmartCompose",
            "copy": {"title": "Smart compose", "badge": "Cloud"},
            "options": {"endpoint": "/demo/compose", "timeoutMs": 2000},
        },
        "requirements": [{"contextName": "rttMs", "operator": "NUM_LTE", "value": "300"}],
    },
    {
        "key": "lite",
        "ui_state": {
            "component": "TemplateReplies",
            "copy": {"title": "Quick replies"},
            "options": {"templates": TEMPLATES},
        },
    },
    {"key": "off", "ui_state": {"component": "None"}},
]

LEAD_SUMMARY_LADDER: list[dict[str, Any]] = [
    {
        "key": "edge",
        "runs_on": "device",
        "ui_state": {
            "component": "LeadSummary",
            "copy": {"title": "Lead summary", "badge": "On-device"},
            "options": {"model": "tiny-summarizer-v2", "maxSentences": 3},
        },
        "requirements": [
            {"contextName": "memoryGb", "operator": "NUM_GTE", "value": "6"},
            {"contextName": "benchmarkMs", "operator": "NUM_LTE", "value": "80"},
        ],
    },
    {
        "key": "cloud",
        "runs_on": "cloud",
        "ui_state": {
            "component": "LeadSummary",
            "copy": {"title": "Lead summary", "badge": "Cloud"},
            "options": {"endpoint": "/api/summaries", "timeoutMs": 3000},
        },
        "requirements": [{"contextName": "rttMs", "operator": "NUM_LTE", "value": "400"}],
    },
    {
        "key": "lite",
        "ui_state": {"component": "LeadTimeline", "copy": {"title": "Recent activity"}},
    },
    {"key": "off", "ui_state": {"component": "None"}},
]

FLAGS: list[dict[str, Any]] = [
    {
        "key": "smart-compose",
        "kind": "string",
        "description": "AI reply suggestions in the lead inbox: on-device, cloud, or templates",
        "tags": ["ai", "edge"],
        "enabled": True,
        "off_value": "off",
        "ladder": SMART_COMPOSE_LADDER,
    },
    {
        "key": "lead-summary",
        "kind": "string",
        "description": "AI summary of a lead's history: on-device, cloud, or a plain timeline",
        "tags": ["ai", "edge"],
        "enabled": True,
        "off_value": "off",
        "ladder": LEAD_SUMMARY_LADDER,
    },
    {
        "key": "inbox-digest",
        "kind": "boolean",
        "description": "AI summary of the day's leads",
        "tags": ["ai", "cloud"],
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


def _create_flag(spec: dict[str, Any], environments: list[Environment]) -> None:
    flag_create(
        key=spec["key"],
        kind=spec["kind"],
        description=spec["description"],
        tags=spec["tags"],
        off_value=spec.get("off_value"),
    )
    if "ladder" in spec:
        flag = Flag.objects.get(key=spec["key"])
        flag_ladder_set(flag=flag, rungs=spec["ladder"], baseline="lite", safe="lite")
    for environment in environments:
        _configure_state(spec, environment)


def _configure_state(spec: dict[str, Any], environment: Environment) -> None:
    state = FlagState.objects.get(flag__key=spec["key"], environment=environment)
    flag_state_update(
        state=state,
        enabled=spec["enabled"],
        variants=spec.get("variants", []),
    )
    for rule in spec.get("rules", []):
        fields = {k: v for k, v in rule.items() if k != "segments"}
        rule_create(state=state, segments=[_segment(s) for s in rule.get("segments", [])], **fields)


def demo_load() -> list[str]:
    """Create whatever demo data is missing; return a line per thing created."""
    with publish_batch():
        created = _flags_and_keys()
    if not ClientProfile.objects.exists():
        clients = settings.EDGEFLAGS_DEMO_CLIENTS
        population_write(clients=clients, seed=2026)
        created.append(f"{clients} synthetic capability profiles")
    if not SegmentationModel.objects.exists():
        run = segmentation_run(trigger="demo", seed=0)
        created.append(f"segmentation model v{run.model_version} ({run.k} segments)")
    with publish_batch():  # 72 hours of history: one version at the end, not one per hour
        created += demo_rollouts_load()
        created += demo_model_story_load(timezone.now().replace(minute=0, second=0, microsecond=0))
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
    demo, demo_new = environment_get_or_create(key=DEMO_ENVIRONMENT)
    if demo_new:
        created.append(f"environment {DEMO_ENVIRONMENT}")
    for spec in FLAGS:
        if not Flag.objects.filter(key=spec["key"]).exists():
            _create_flag(spec, [production, demo])
            created.append(f"flag {spec['key']}")
        elif demo_new:
            _configure_state(spec, demo)
    created += demo_models_load(list(Environment.objects.all()))
    if _key_file_missing(DEMO_KEY_FILE):
        _key_file_write(DEMO_KEY_FILE, demo, "demo page")
        created.append(f"client API key for the {DEMO_ENVIRONMENT} environment (the demo page's)")
    if _key_file_missing(TRAFFIC_KEY_FILE):
        _key_file_write(TRAFFIC_KEY_FILE, production, "traffic simulator")
        created.append("client API key for production (the traffic simulator's)")
    return created


def _key_file_read(name: str) -> str | None:
    """The live raw key kept in var/<name>, or None when missing or revoked."""
    path = Path(settings.VAR_DIR) / name
    if not path.is_file():
        return None
    raw = path.read_text().strip()
    if ApiKey.objects.filter(key_hash=hash_api_key(raw), revoked_at__isnull=True).exists():
        return raw
    return None


def _key_file_missing(name: str) -> bool:
    return _key_file_read(name) is None


def _key_file_write(name: str, environment: Environment, purpose: str) -> None:
    _, raw = api_key_create(environment=environment, scope="client", name=purpose)
    path = Path(settings.VAR_DIR) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    # Owner-only: the file holds a live key (public by design, but no need to hand it out).
    path.touch(mode=0o600)
    path.write_text(raw)


def demo_client_key() -> str:
    """The client key the demo page ships: the demo environment's, made by `load_demo`.

    Read-only: a page view never creates anything. Raises DemoNotLoaded when it is missing
    or revoked.
    """
    raw = _key_file_read(DEMO_KEY_FILE)
    if raw is None:
        raise DemoNotLoaded(f"no live demo key in {settings.VAR_DIR}/{DEMO_KEY_FILE}")
    return raw


def traffic_client_key() -> str:
    """The production client key the traffic simulator uses, made by `load_demo`."""
    raw = _key_file_read(TRAFFIC_KEY_FILE)
    if raw is None:
        raise DemoNotLoaded(f"no live traffic key in {settings.VAR_DIR}/{TRAFFIC_KEY_FILE}")
    return raw
