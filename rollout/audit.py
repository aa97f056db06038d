"""Writing the audit log: one entry per change, by a person, the command line or the controller."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.utils import timezone

from ops.json_input import check_text
from rollout.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who or what made a change. A person's changes are checked against their role
    (rollout/roles.py); code (the controller, the command line) is only named."""

    name: str
    user: User | None = None
    person: bool = False

    @classmethod
    def of(cls, user: AbstractBaseUser | AnonymousUser | None) -> Actor:
        """The person behind a request (an anonymous one may change nothing)."""
        if user is None or not user.is_authenticated:
            return cls("anonymous", None, person=True)
        return cls(user.get_username(), user if isinstance(user, User) else None, person=True)

    @classmethod
    def cli(cls) -> Actor:
        """A management command, named after the operating-system user who ran it."""
        try:
            who = getpass.getuser()
        except (KeyError, OSError):  # no login name (a container without a passwd entry)
            who = "unknown"
        return cls(f"cli:{who}")


CONTROLLER = Actor("controller")
# Code that changes state on its own behalf (demo data, imports run from code, tests).
SYSTEM = Actor("system")


def audit_record(
    *,
    actor: Actor,
    action: str,
    environment: str = "",
    flag: str = "",
    segment: str = "",
    segment_identity: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    evidence: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Add one entry (inside the caller's transaction, so it commits with the change).
    A reason that cannot be stored is refused (JsonInputError, a 400) before anything is."""
    check_text(reason, field="reason")
    return AuditEntry.objects.create(
        at=at or timezone.now(),
        actor=actor.user if actor.user is not None and actor.user.pk else None,
        actor_name=actor.name,
        action=action,
        environment=environment,
        flag=flag,
        segment=segment,
        segment_identity=segment_identity,
        before=before or {},
        after=after or {},
        reason=reason,
        evidence=evidence or {},
    )
