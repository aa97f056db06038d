"""Who may do what, in one place: the admin, the console, the management API and every
service that changes state ask this module.

- "viewer" (group): looks at everything, changes nothing;
- "release manager" (group): also operates rollouts (advance, pause, resume, roll back, kill),
  edits flags and rules, reviews segments, queues segmentation runs and edits, enables,
  disables and runs the periodic schedules;
- superusers: everything, including environments and API keys.
Every one of them must be staff to sign in to the admin at all; a staff user in neither group
changes nothing. Code that is not a person (the controller, the command line, which already
has the server's shell) is not checked here; it is recorded in the audit log by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied

if TYPE_CHECKING:
    from rollout.audit import Actor

RELEASE_MANAGER = "release manager"
VIEWER = "viewer"

VIEWED_APPS = ("rollout", "segments", "capability_probe", "ops", "django_celery_beat")
# What a release manager may change, beyond looking (app label -> model -> verbs). Anything
# absent is for superusers only (environments, API keys); models whose admin declares them
# read-only (the audit log, snapshots, profiles, heartbeats) are changed by nobody there.
OPERATED: dict[str, dict[str, tuple[str, ...]]] = {
    "rollout": {
        "flag": ("add", "change"),
        "flagstate": ("change",),
        "rung": ("add", "change", "delete"),
        # Registered once, never edited (a new artifact is a new version); unused ones go.
        "modelversion": ("add", "delete"),
        # File a retraining request by hand, resolve one; send a webhook delivery again.
        "retrainingrequest": ("add", "change"),
        "webhookdelivery": ("change",),
        "targetingrule": ("add", "change", "delete"),
        "segment": ("add", "change"),
        "rolloutplan": ("add", "change"),
        "segmentrollout": ("change",),
    },
    # Accept, rename and merge are changes of a segment; "Run now" adds a run.
    "segments": {"capabilitysegment": ("change",), "segmentationrun": ("add",)},
    # Schedules: editing, enabling, disabling and running a periodic task are its changes.
    "django_celery_beat": {
        "periodictask": ("add", "change", "delete"),
        "intervalschedule": ("add", "change"),
        "crontabschedule": ("add", "change"),
        "solarschedule": ("add", "change"),
        "clockedschedule": ("add", "change"),
    },
}


class RoleRequired(PermissionDenied):
    """The actor's role does not allow the change (a 403 wherever it surfaces)."""

    def __init__(self, verb: str, label: str) -> None:
        who = "superusers" if not _operated(verb, label) else "release managers and superusers"
        super().__init__(f"{verb} {label}: only {who} may do this")


def can_view(user: Any) -> bool:
    return bool(user and user.is_active and user.is_staff)


def can_operate(user: Any) -> bool:
    """Whether the user has the release manager role (or is a superuser)."""
    if not can_view(user):
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_edgeflags_operates", None)
    if cached is None:
        cached = user.groups.filter(name=RELEASE_MANAGER).exists()
        user._edgeflags_operates = cached  # one query per request
    return bool(cached)


def _operated(verb: str, label: str) -> bool:
    app_label, _, model = label.partition(".")
    return verb in OPERATED.get(app_label, {}).get(model, ())


def may(user: Any, verb: str, label: str) -> bool:
    """Whether `user` may `verb` ("add", "change", "delete") rows of the model `label`
    ("app_label.model_name", lowercase)."""
    if not can_view(user):
        return False
    if user.is_superuser:
        return True
    return _operated(verb, label) and can_operate(user)


def role_require(actor: Actor, verb: str, label: str) -> None:
    """Raise RoleRequired unless the actor may make the change (people only: see above)."""
    if actor.person and not may(actor.user, verb, label):
        raise RoleRequired(verb, label)


def roles_ensure() -> None:
    """Create the "viewer" and "release manager" groups with their permissions (idempotent;
    run after every migrate, since permissions appear with their models)."""
    from django.contrib.auth.models import Group, Permission

    views = list(
        Permission.objects.filter(
            content_type__app_label__in=VIEWED_APPS, codename__startswith="view_"
        )
    )
    viewer, _ = Group.objects.get_or_create(name=VIEWER)
    viewer.permissions.add(*views)
    operated = [
        permission
        for permission in Permission.objects.filter(
            content_type__app_label__in=list(OPERATED)
        ).select_related("content_type")
        if _operated(
            permission.codename.split("_", 1)[0],
            f"{permission.content_type.app_label}.{permission.content_type.model}",
        )
    ]
    manager, _ = Group.objects.get_or_create(name=RELEASE_MANAGER)
    manager.permissions.add(*views, *operated)
