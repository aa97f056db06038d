"""Who may do what in the console and the management API.

- "viewer" (group): looks at everything, changes nothing;
- "release manager" (group): also operates rollouts (advance, pause, resume, roll back, kill),
  edits flags and reviews segments;
- superusers: everything, including environments and API keys.
Every one of them must be staff to sign in to the admin at all.
"""

from __future__ import annotations

from typing import Any

RELEASE_MANAGER = "release manager"
VIEWER = "viewer"


def can_view(user: Any) -> bool:
    return bool(user and user.is_active and user.is_staff)


def can_operate(user: Any) -> bool:
    """Whether the user may change rollouts (and flags, and segments)."""
    if not can_view(user):
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_edgeflags_operates", None)
    if cached is None:
        cached = user.groups.filter(name=RELEASE_MANAGER).exists()
        user._edgeflags_operates = cached  # one query per request
    return bool(cached)


VIEWED_APPS = ("rollout", "segments", "capability_probe", "ops", "django_celery_beat")
# What a release manager may change, beyond looking: flags and their rules and ladders,
# rollouts, rule segments, the review of learned segments and the schedules. Environments
# and API keys stay with superusers; the audit log is never edited.
OPERATED: dict[str, dict[str, tuple[str, ...]]] = {
    "rollout": {
        "flag": ("add", "change"),
        "flagstate": ("change",),
        "rung": ("add", "change", "delete"),
        "targetingrule": ("add", "change", "delete"),
        "segment": ("add", "change"),
        "rolloutplan": ("add", "change"),
        "segmentrollout": ("change",),
    },
    "segments": {"capabilitysegment": ("change",)},
    "django_celery_beat": {"periodictask": ("change",)},
}


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
        if permission.codename.split("_", 1)[0]
        in OPERATED[permission.content_type.app_label].get(permission.content_type.model, ())
    ]
    manager, _ = Group.objects.get_or_create(name=RELEASE_MANAGER)
    manager.permissions.add(*views, *operated)
