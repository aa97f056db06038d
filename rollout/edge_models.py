"""Writes of on-device model versions: registering one, and choosing the version an
environment serves. The admin, the management API and `load_demo` all come through here:
the role is checked and the audit entry written once."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from ops.errors import DomainError, NotFound
from rollout.audit import SYSTEM, Actor, audit_record
from rollout.models import Flag, FlagState, ModelVersion
from rollout.roles import role_require
from rollout.services import fields_of

REGISTERED_FIELDS = (
    "rung",
    "name",
    "version",
    "url",
    "size_bytes",
    "sha256",
    "format",
    "requirements",
    "download_requirements",
    "delta_from",
    "delta_url",
    "delta_size_bytes",
    "delta_sha256",
    "notes",
)


def _default_rung(flag: Flag) -> str:
    """The flag's on-device rung when it has exactly one (else the caller must name one)."""
    device = list(flag.rungs.filter(runs_on="device").values_list("key", flat=True))
    return device[0] if len(device) == 1 else ""


@transaction.atomic
def model_version_register(
    *, flag: Flag, actor: Actor = SYSTEM, reason: str = "", **fields: Any
) -> ModelVersion:
    """Register a model version of `flag` (validated; raises ValidationError by field). It
    serves nowhere until an environment serves it or a rollout plan ramps it."""
    role_require(actor, "add", "rollout.modelversion")
    unknown = set(fields) - set(REGISTERED_FIELDS)
    if unknown:
        raise DomainError(sorted(unknown)[0], "not a field of a model version")
    if not fields.get("rung"):
        fields["rung"] = _default_rung(flag)
    row = ModelVersion(flag=flag, created_by=actor.user if actor.person else None, **fields)
    row.full_clean()
    row.save()
    audit_record(
        actor=actor,
        action="modelversion.add",
        flag=flag.key,
        after={"object": str(row), "id": row.pk, **fields_of(row, REGISTERED_FIELDS)},
        reason=reason or "model version registered",
    )
    return row


@transaction.atomic
def model_version_serve(
    *, state: FlagState, version: ModelVersion | None, actor: Actor = SYSTEM, reason: str = ""
) -> FlagState:
    """Serve `version` (None: no model) on the flag's on-device rung to every client of the
    state's environment; a rollout plan of another version still ramps its treatment arm."""
    role_require(actor, "change", "rollout.flagstate")
    if version is not None and version.flag_id != state.flag_id:
        raise DomainError("modelVersion", f"{version} is a model of another flag")
    before = state.model_version
    if before == version:
        return state
    state.model_version = version
    state.full_clean()
    state.save(update_fields=["model_version", "updated_at"])
    audit_record(
        actor=actor,
        action="flagstate.model",
        environment=state.environment.key,
        flag=state.flag.key,
        before={"modelVersion": before.version if before else None},
        after={"modelVersion": version.version if version else None},
        reason=reason or "model version served",
    )
    return state


def model_version_get(*, flag: Flag, version: str, field: str = "modelVersion") -> ModelVersion:
    """The flag's model version `version` (NotFound naming `field` when there is none)."""
    row = ModelVersion.objects.filter(flag=flag, version=version).first()
    if row is None:
        raise NotFound(field, f"{flag.key} has no model version {version[:40]!r}")
    return row
