"""Writes of the rollout app: environments, flags, states, rules, segments.

API keys are written by access/api_keys.py.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction

from ops.errors import DomainError
from rollout.audit import SYSTEM, Actor, audit_record
from rollout.models import Environment, Flag, FlagState, Rung, Segment, TargetingRule
from rollout.roles import role_require

DEFAULT_OFF_VALUES: dict[str, Any] = {
    Flag.Kind.BOOLEAN: False,
    Flag.Kind.STRING: "",
    Flag.Kind.NUMBER: 0,
    Flag.Kind.OBJECT: {},
}


def model_label(model: type[models.Model] | models.Model) -> str:
    """ "app_label.model_name", the name rollout/roles.py knows a model by."""
    return f"{model._meta.app_label}.{model._meta.model_name}"


def _jsonable(value: Any) -> Any:
    """A field value as the audit log stores it: rows by primary key, times as ISO text."""
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, models.QuerySet | list | tuple | set):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID | datetime.timedelta):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _where(row: models.Model) -> dict[str, Any]:
    """The environment, flag and segment an audit entry about `row` is filed under."""
    found: dict[str, Any] = {}
    for owner in (row, getattr(row, "state", None), getattr(row, "flag_state", None)):
        if owner is None:
            continue
        if isinstance(owner, Environment):
            found.setdefault("environment", owner.key)
        if isinstance(owner, Flag):
            found.setdefault("flag", owner.key)
        environment = getattr(owner, "environment", None)
        if isinstance(environment, Environment):
            found.setdefault("environment", environment.key)
        flag = getattr(owner, "flag", None)
        if isinstance(flag, Flag):
            found.setdefault("flag", flag.key)
    return found


# Fields the audit log never holds: password and key hashes, secrets, and token digests
# (knox's primary key).
SECRET_WORDS = ("password", "secret", "hash", "digest")


def _secret(model: type[models.Model] | models.Model, name: str) -> bool:
    return any(word in name for word in SECRET_WORDS)


def _identify(row: models.Model) -> dict[str, Any]:
    """How the audit log names a row: its text and primary key, unless those are secret."""
    pk = row._meta.pk
    if pk is not None and _secret(row, pk.name):
        return {"object": f"{row._meta.verbose_name} of user {getattr(row, 'user_id', '?')}"}
    return {"object": str(row), "id": _jsonable(row.pk)}


def fields_of(row: models.Model, names: Iterable[str]) -> dict[str, Any]:
    """The audit-log form of `row`'s fields `names` (many-to-many ones as lists of keys;
    secrets left out)."""
    values: dict[str, Any] = {}
    for name in names:
        if _secret(row, name):
            continue
        field = row._meta.get_field(name)
        if field.many_to_many:
            values[name] = sorted(getattr(row, name).values_list("pk", flat=True)) if row.pk else []
        else:
            values[name] = _jsonable(getattr(row, getattr(field, "attname", name), None))
    return values


@transaction.atomic
def row_save(
    *,
    row: models.Model,
    actor: Actor,
    before: dict[str, Any] | None,
    changed: Iterable[str],
    reason: str = "",
) -> models.Model:
    """Save a row added or edited in a plain admin form, after checking the actor's role,
    with an audit entry of what changed (`before` is None for a new row)."""
    verb = "add" if before is None else "change"
    role_require(actor, verb, model_label(row))
    row.save()
    names = list(changed)
    if before is not None:
        # A form can call a field changed that holds the same value (JSON spelt anew).
        after = fields_of(row, names)
        names = [name for name in names if after.get(name) != before.get(name)]
        if not names:
            return row
        before = {name: before.get(name) for name in names}
    audit_record(
        actor=actor,
        action=f"{row._meta.model_name}.{verb}"[:40],
        **_where(row),
        before={**_identify(row), **before} if before is not None else {},
        after={**_identify(row), **fields_of(row, names)},
        reason=reason or "edited in the admin",
    )
    return row


@transaction.atomic
def row_relations_save(
    *, row: models.Model, actor: Actor, names: list[str], save: Callable[[], None], reason: str = ""
) -> models.Model:
    """Save a row's many-to-many fields `names` with `save` (a form's save_m2m), after
    checking the actor's role, with an audit entry when they changed (a user's groups are
    their roles)."""
    role_require(actor, "change", model_label(row))
    before = fields_of(row, names)
    save()
    after = fields_of(row, names)
    if after != before:
        audit_record(
            actor=actor,
            action=f"{row._meta.model_name}.relations"[:40],
            **_where(row),
            before={**_identify(row), **before},
            after={**_identify(row), **after},
            reason=reason or "edited in the admin",
        )
    return row


@transaction.atomic
def rows_delete(*, rows: Iterable[models.Model], actor: Actor, reason: str = "") -> int:
    """Delete rows (an admin delete or an inline's removed row), after checking the actor's
    role, with one audit entry each naming what was deleted."""
    count = 0
    for row in rows:
        role_require(actor, "delete", model_label(row))
        where = _where(row)
        before = {
            **_identify(row),
            **fields_of(row, [f.name for f in row._meta.concrete_fields]),
        }
        row.delete()
        audit_record(
            actor=actor,
            action=f"{row._meta.model_name}.delete"[:40],
            **where,
            before=before,
            reason=reason or "deleted in the admin",
        )
        count += 1
    return count


@transaction.atomic
def environment_create(
    *, key: str, name: str = "", description: str = "", actor: Actor = SYSTEM
) -> Environment:
    """Create an environment and a (disabled) state in it for every existing flag."""
    role_require(actor, "add", "rollout.environment")
    environment = Environment(key=key, name=name or key.capitalize(), description=description)
    environment.full_clean()
    environment.save()
    audit_record(
        actor=actor,
        action="environment.add",
        environment=environment.key,
        after={"key": environment.key, "name": environment.name},
        reason="new environment",
    )
    for flag in Flag.objects.all():
        FlagState.objects.create(
            flag=flag, environment=environment, off_value=DEFAULT_OFF_VALUES[flag.kind]
        )
    return environment


def environment_get_or_create(*, key: str, actor: Actor = SYSTEM) -> tuple[Environment, bool]:
    """The environment with `key`, created when missing."""
    existing = Environment.objects.filter(key=key).first()
    if existing is not None:
        return existing, False
    return environment_create(key=key, actor=actor), True


@transaction.atomic
def flag_create(
    *,
    key: str,
    kind: str = Flag.Kind.BOOLEAN,
    description: str = "",
    tags: list[str] | None = None,
    off_value: Any = None,
) -> Flag:
    """Create a flag with a disabled state in every environment."""
    flag = Flag(key=key, kind=kind, description=description, tags=tags or [])
    flag.full_clean()
    flag.save()
    for environment in Environment.objects.all():
        state = FlagState(
            flag=flag,
            environment=environment,
            off_value=DEFAULT_OFF_VALUES[kind] if off_value is None else off_value,
        )
        state.full_clean()
        state.save()
    return flag


@transaction.atomic
def flag_state_update(
    *, state: FlagState, actor: Actor = SYSTEM, reason: str = "", **fields: Any
) -> FlagState:
    """Change a flag's state in one environment (enabled, off_value, variants, dependencies)."""
    role_require(actor, "change", "rollout.flagstate")
    allowed = {"enabled", "off_value", "variants", "dependencies"}
    unknown = set(fields) - allowed
    if unknown:
        raise DomainError(sorted(unknown)[0], "not a field of a flag state")
    before = fields_of(state, fields)
    for name, value in fields.items():
        setattr(state, name, value)
    state.full_clean()
    state.save()
    after = fields_of(state, fields)
    if after != before:
        audit_record(
            actor=actor,
            action="flagstate.change",
            environment=state.environment.key,
            flag=state.flag.key,
            before=before,
            after=after,
            reason=reason or "flag state changed",
        )
    return state


@transaction.atomic
def rule_create(
    *, state: FlagState, segments: list[Segment] | None = None, **fields: Any
) -> TargetingRule:
    """Append a targeting rule to a flag state (validated like the admin form)."""
    if "order" not in fields:
        fields["order"] = state.rules.count()
    rule = TargetingRule(state=state, **fields)
    rule.full_clean()
    rule.save()
    if segments:
        rule.segments.set(segments)
    return rule


@transaction.atomic
def segment_create(
    *, key: str, constraints: list[dict[str, Any]], description: str = ""
) -> Segment:
    """Create a rule segment."""
    segment = Segment(key=key, constraints=constraints, description=description)
    segment.full_clean()
    segment.save()
    return segment


def ladder_problems(rungs: list[dict[str, Any]], *, baseline: str, safe: str) -> list[str]:
    """Whole-ladder rules, each naming its field: at least two rungs, unique keys, a last
    rung without requirements (every client can always be served), known baseline and safe."""
    problems = []
    keys = [str(r.get("key")) for r in rungs]
    if len(rungs) < 2:
        problems.append("rungs: a ladder needs at least two rungs")
    if len(set(keys)) != len(keys):
        problems.append("rungs: each rung key may appear once")
    if rungs and rungs[-1].get("requirements"):
        problems.append(f"rungs[{len(rungs) - 1}].requirements: the last rung has none")
    for name, key in (("baseline_rung", baseline), ("safe_rung", safe)):
        if key and key not in keys:
            problems.append(f"{name}: {key!r} is not a rung of this ladder ({', '.join(keys)})")
    return problems


@transaction.atomic
def flag_ladder_set(
    *,
    flag: Flag,
    rungs: list[dict[str, Any]],
    baseline: str,
    safe: str = "lite",
    estimate_confidence: float | None = None,
) -> Flag:
    """Replace a flag's degradation ladder (rungs best first), its baseline and safe rungs
    and, when given, the confidence an estimate needs to meet a requirement."""
    problems = ladder_problems(rungs, baseline=baseline, safe=safe)
    if problems:
        raise ValidationError({p.split(":")[0].split("[")[0]: [p] for p in problems})
    flag.rungs.all().delete()
    for order, raw in enumerate(rungs):
        rung = Rung(flag=flag, order=order, **raw)
        rung.full_clean()
        rung.save()
    flag.baseline_rung, flag.safe_rung = baseline, safe
    if estimate_confidence is not None:
        flag.estimate_confidence = estimate_confidence
    flag.full_clean()
    flag.save()
    return flag
