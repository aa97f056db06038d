"""Import an Unleash client-features export into Edgeflags' own model.

The pure converter (rollout/engine/unleash.py) turns the export into Edgeflags' definitions;
this module stores them as rows: every feature a flag with its state in one environment,
strategies as targeting rules with the same bucketing parameters (so every client keeps its
bucket), segments as rule segments, variants with their names, weights, stickiness,
overrides and payloads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction

from ops.json_input import check_json
from rollout.audit import SYSTEM, Actor, audit_record
from rollout.engine.unleash import convert
from rollout.models import Environment, Flag, FlagState, Segment, TargetingRule
from rollout.roles import role_require

STRATEGIES = {choice.value for choice in TargetingRule.Strategy}
NEVER_MATCHES = [
    # IN over an empty list never matches: the stand-in for what Unleash evaluates as false.
    {"contextName": "unleashUnmapped", "operator": "IN", "values": []}
]


@dataclass
class ImportReport:
    """What an import did, and what it could not map (each line names the feature)."""

    flags_created: list[str] = field(default_factory=list)
    flags_updated: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)


def _validated(obj: models.Model, where: str, report: ImportReport) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        for name, errors in exc.message_dict.items():
            report.unmapped.extend(f"{where}: {name}: {error}" for error in errors)


def _never_segment(reason: str) -> Segment:
    segment, _ = Segment.objects.get_or_create(
        key=f"unleash-never-{reason}",
        defaults={
            "constraints": NEVER_MATCHES,
            "description": f"Stands for {reason} from an Unleash import: never matches, "
            "as in Unleash.",
        },
    )
    return segment


def _rule_fields(rule: dict[str, Any], flag_key: str, where: str, report: ImportReport) -> Any:
    parameters = rule["parameters"]
    fields: dict[str, Any] = {
        "strategy": rule["strategy"],
        "constraints": rule["constraints"],
        "variants": rule["variants"],
    }
    if rule["strategy"] != TargetingRule.Strategy.FLEXIBLE_ROLLOUT:
        fields["parameters"] = parameters
        return fields
    rollout = parameters.get("rollout", "")
    if not rollout.isdigit() or int(rollout) > 100:
        report.unmapped.append(f"{where}: rollout {rollout!r} is not 0..100; imported at 0 %")
        rollout = "0"
    fields.update(
        rollout_percentage=int(rollout),
        stickiness=parameters.get("stickiness") or "default",
        group_id=parameters.get("groupId") or flag_key,
    )
    return fields


def _segments_import(raws: list[dict[str, Any]], report: ImportReport) -> dict[Any, Segment]:
    """Unleash segments as rule segments, by their Unleash id."""
    segments: dict[Any, Segment] = {}
    for raw in raws:
        segment, _ = Segment.objects.update_or_create(
            key=raw["key"],
            defaults={
                "constraints": raw["constraints"],
                "description": f"Imported from Unleash segment {raw['id']}",
            },
        )
        _validated(segment, f"segment {raw['key']}", report)
        segments[raw["id"]] = segment
        report.segments.append(raw["key"])
    return segments


def _import_audit(
    actor: Actor, environment: Environment, source: str, report: ImportReport
) -> None:
    audit_record(
        actor=actor,
        action="unleash.import",
        environment=environment.key,
        after={
            "file": source,
            "flagsCreated": sorted(report.flags_created),
            "flagsUpdated": sorted(report.flags_updated),
            "segments": sorted(report.segments),
            "unmapped": len(report.unmapped),
        },
        reason="import_unleash",
    )


@transaction.atomic
def unleash_import(
    *,
    document: dict[str, Any],
    environment: Environment,
    actor: Actor = SYSTEM,
    source: str = "",
) -> ImportReport:
    """Import features, strategies, constraints, segments, variants and dependencies, with
    one audit entry (`source` names the file); needs the right to add flags.

    Raises ops.json_input.JsonInputError naming the path (``features[3].name``) when the
    export holds a string or nesting that could not be stored or published; nothing is
    imported then.
    """
    role_require(actor, "add", "rollout.flag")
    # Checked before converting: the converter copies strings into rows and recurses.
    check_json(document, field="")
    conversion = convert(document)
    report = ImportReport(unmapped=list(conversion.unmapped))
    segments = _segments_import(conversion.segments, report)
    for raw in conversion.flags:
        key = raw["key"]
        flag, created = Flag.objects.update_or_create(
            key=key, defaults={"kind": raw["kind"], "description": raw["description"]}
        )
        (report.flags_created if created else report.flags_updated).append(key)
        state, _ = FlagState.objects.update_or_create(
            flag=flag,
            environment=environment,
            defaults={
                "enabled": raw["enabled"],
                "off_value": raw["offValue"],
                "variants": raw["variants"],
                "dependencies": raw["dependencies"],
            },
        )
        _validated(state, key, report)
        state.rules.all().delete()
        for order, rule in enumerate(raw["rules"]):
            where = f"{key}.strategies[{order}]"
            referenced = [
                segments[s] if s in segments else _never_segment(f"missing-segment-{s}")
                for s in rule["segments"]
            ]
            if rule["strategy"] not in STRATEGIES:
                report.unmapped.append(
                    f"{where}: custom strategy {rule['strategy']!r} is not supported; "
                    "imported as a rule that never matches, as in an SDK without it"
                )
                rule = {**rule, "strategy": "default", "parameters": {}}
                referenced.append(_never_segment("custom-strategy"))
            row = TargetingRule.objects.create(
                state=state, order=order, **_rule_fields(rule, key, where, report)
            )
            _validated(row, where, report)
            row.segments.set(referenced)
    _import_audit(actor, environment, source, report)
    return report
