"""The snapshot compiler: an environment's rows -> the engine's snapshot document.

This is the only module that knows both the ORM models and the engine's document format
(rollout/engine/document.py reads it back into engine types).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from django.utils import timezone

from rollout.models import (
    Environment,
    FlagState,
    RolloutPlan,
    Rung,
    Segment,
    SegmentRollout,
    TargetingRule,
)
from rollout.selectors import segment_keys
from segments.selectors import model_current, segment_list

SCHEMA_VERSION = 1


def _rule_document(rule: TargetingRule, flag_key: str) -> dict[str, Any]:
    parameters = {str(k): str(v) for k, v in (rule.parameters or {}).items()}
    if rule.strategy == TargetingRule.Strategy.FLEXIBLE_ROLLOUT:
        # Always emit groupId: an absent one makes Unleash engines bucket dependencies by
        # the child's name (docs/bucketing.md), and a snapshot must evaluate the same anywhere.
        parameters = {
            "rollout": str(rule.rollout_percentage),
            "stickiness": rule.stickiness or "default",
            "groupId": rule.group_id or flag_key,
        }
    return {
        "strategy": rule.strategy,
        "parameters": parameters,
        "constraints": rule.constraints or [],
        "segments": sorted(segment.pk for segment in rule.segments.all()),
        "variants": rule.variants or [],
    }


def _rung_document(rung: Rung, state: FlagState) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "key": rung.key,
        "value": rung.key if rung.value is None else rung.value,
        "uiState": rung.ui_state,
        "requirements": rung.requirements,
        "runsOn": rung.runs_on,
    }
    model = state.model_version
    if model is not None and model.rung == rung.key and rung.runs_on == Rung.RunsOn.DEVICE:
        raw["model"] = model.document()
    return raw


def _ladder_document(state: FlagState, rungs: list[Rung], keys: dict[int, str]) -> dict[str, Any]:
    return {
        "rungs": [_rung_document(rung, state) for rung in rungs],
        "baseline": state.flag.baseline_rung or rungs[-1].key,
        "safe": state.flag.safe_rung or rungs[-1].key,
        "minConfidence": state.flag.estimate_confidence,
        **_rollout_document(state, rungs, keys),
    }


def _rollout_document(state: FlagState, rungs: list[Rung], keys: dict[int, str]) -> dict[str, Any]:
    """Each segment's percentage of the plan, under the segment's current key; no plan:
    every rung generally available."""
    try:
        plan: RolloutPlan = state.rollout_plan
    except RolloutPlan.DoesNotExist:
        return {}
    rollout: dict[str, Any] = {
        "target": plan.target_rung or rungs[0].key,
        "segments": {
            keys[row.segment_identity]: row.snapshot_entry()
            for row in plan.segments.all()
            if row.segment_identity in keys
        },
    }
    model = plan.target_model
    if model is not None:
        # A model rollout: the treatment arm runs this version on its rung.
        rollout["target"] = model.rung
        rollout["model"] = model.document()
    return {"rollout": rollout}


def compile_environment(environment: Environment) -> dict[str, Any]:
    """Build the snapshot document of `environment` from its current rows (version unset)."""
    states = (
        FlagState.objects.filter(environment=environment, flag__archived=False)
        .select_related("flag", "rollout_plan__target_model", "model_version")
        .prefetch_related(
            Prefetch(
                "rollout_plan__segments",
                queryset=SegmentRollout.objects.order_by("segment_identity"),
            ),
            Prefetch("flag__rungs", queryset=Rung.objects.order_by("order", "pk")),
            Prefetch(
                "rules",
                queryset=TargetingRule.objects.order_by("order", "pk").prefetch_related("segments"),
            ),
        )
        .order_by("flag__key")
    )
    keys = segment_keys()
    flags = []
    for state in states:
        flag: dict[str, Any] = {
            "key": state.flag.key,
            "kind": state.flag.kind,
            "enabled": state.enabled,
            "offValue": state.off_value,
            "variants": state.variants or [],
            "dependencies": state.dependencies or [],
            "rules": [_rule_document(rule, state.flag.key) for rule in state.rules.all()],
        }
        rungs = list(state.flag.rungs.all())
        if rungs:
            flag["ladder"] = _ladder_document(state, rungs, keys)
        flags.append(flag)
    segments = [
        {"id": segment.pk, "key": segment.key, "constraints": segment.constraints or []}
        for segment in Segment.objects.order_by("pk")
    ]
    document: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "environment": environment.key,
        "version": 0,
        "publishedAt": timezone.now().isoformat(),
        "flags": flags,
        "segments": segments,
        # What events and decision tokens count by: a rename changes the keys, not these.
        "segmentIdentities": {key: identity for identity, key in sorted(keys.items())},
    }
    model = model_current()
    if model is not None:
        # Keys and labels come from the segment rows: an operator may rename a segment, and
        # rules and rollouts refer to it by its current key. A merged segment's centroid
        # serves its target's key, so the clients of both get the same rollout.
        segments_by_identity = {s.identity: s for s in segment_list()}
        key_by_pk = {s.pk: s.key for s in segments_by_identity.values()}
        served = {
            identity: key_by_pk.get(s.merged_into_id, s.key) if s.merged_into_id else s.key
            for identity, s in segments_by_identity.items()
        }
        artifact = dict(model.artifact)
        artifact["keys"] = [
            served.get(i, key)
            for i, key in zip(artifact["identities"], artifact["keys"], strict=True)
        ]
        document["capabilityModel"] = artifact
        document["segmentLabels"] = {s.key: s.label for s in segments_by_identity.values()}
    return document
