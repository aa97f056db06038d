"""Writes of the rollout app: environments, API keys, flags, states, rules, segments."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from rollout.models import ApiKey, Environment, Flag, FlagState, Rung, Segment, TargetingRule
from rollout.snapshot_store import hash_api_key

KEY_PREFIXES = {ApiKey.Scope.CLIENT: "efc_", ApiKey.Scope.SERVER: "efs_"}
DEFAULT_OFF_VALUES: dict[str, Any] = {
    Flag.Kind.BOOLEAN: False,
    Flag.Kind.STRING: "",
    Flag.Kind.NUMBER: 0,
    Flag.Kind.OBJECT: {},
}


@transaction.atomic
def environment_create(*, key: str, name: str = "", description: str = "") -> Environment:
    """Create an environment and a (disabled) state in it for every existing flag."""
    environment = Environment(key=key, name=name or key.capitalize(), description=description)
    environment.full_clean()
    environment.save()
    for flag in Flag.objects.all():
        FlagState.objects.create(
            flag=flag, environment=environment, off_value=DEFAULT_OFF_VALUES[flag.kind]
        )
    return environment


def environment_get_or_create(*, key: str) -> tuple[Environment, bool]:
    """The environment with `key`, created when missing."""
    existing = Environment.objects.filter(key=key).first()
    if existing is not None:
        return existing, False
    return environment_create(key=key), True


@transaction.atomic
def api_key_create(
    *,
    environment: Environment,
    scope: str,
    name: str,
    created_by: AbstractBaseUser | AnonymousUser | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is never stored or shown again."""
    if scope not in KEY_PREFIXES:
        raise ValueError(f"scope: must be one of {', '.join(KEY_PREFIXES)}, not {scope!r}")
    raw_key = KEY_PREFIXES[ApiKey.Scope(scope)] + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        environment=environment,
        scope=scope,
        name=name,
        prefix=raw_key[:12],
        key_hash=hash_api_key(raw_key),
        created_by_id=created_by.pk if created_by is not None and created_by.pk else None,
    )
    return api_key, raw_key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key; every API process rejects it within one snapshot check interval."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


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
def flag_state_update(*, state: FlagState, **fields: Any) -> FlagState:
    """Change a flag's state in one environment (enabled, off_value, variants, dependencies)."""
    allowed = {"enabled", "off_value", "variants", "dependencies"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: not a field of a flag state")
    for name, value in fields.items():
        setattr(state, name, value)
    state.full_clean()
    state.save()
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
    *, flag: Flag, rungs: list[dict[str, Any]], baseline: str, safe: str = "lite"
) -> Flag:
    """Replace a flag's degradation ladder (rungs best first) and its baseline and safe rungs."""
    problems = ladder_problems(rungs, baseline=baseline, safe=safe)
    if problems:
        raise ValidationError({p.split(":")[0].split("[")[0]: [p] for p in problems})
    flag.rungs.all().delete()
    for order, raw in enumerate(rungs):
        rung = Rung(flag=flag, order=order, **raw)
        rung.full_clean()
        rung.save()
    flag.baseline_rung, flag.safe_rung = baseline, safe
    flag.full_clean()
    flag.save()
    return flag
