"""Every door of the admin, walked: each registered ModelAdmin's add, change and delete, each
of its actions and each custom view it adds. Every action and custom view declares the
permission it needs, and a viewer or a staff user without a group gets a 403 or no change
from every one of them (and no audit entry, no queued task)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.options import ModelAdmin
from django.db import models
from django.test import Client
from django.urls import URLPattern, reverse

from rollout.models import AuditEntry

pytestmark = pytest.mark.django_db

REGISTRY: list[tuple[type[models.Model], ModelAdmin[Any]]] = list(admin.site._registry.items())
BASE_VIEWS = {"changelist", "add", "history", "delete", "change"}
# What an action's confirmation page asks for, so a confirmed post is what is tried.
CONFIRMATION = {"confirm": "yes", "reason": "trying the door", "post": "yes"}


def _id(entry: tuple[type[models.Model], ModelAdmin[Any]]) -> str:
    return entry[0]._meta.label


def _rows(model: type[models.Model]) -> list[dict[str, Any]]:
    return list(model._default_manager.order_by("pk").values())


def _url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _extra_views(model_admin: ModelAdmin[Any]) -> list[URLPattern]:
    """The URL patterns a ModelAdmin adds to the standard ones (its custom views)."""
    prefix = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}_"
    return [
        pattern
        for pattern in model_admin.get_urls()
        if isinstance(pattern, URLPattern)
        and pattern.name
        and pattern.name.removeprefix(prefix) not in BASE_VIEWS
    ]


class Unchanged:
    """Asserts that a block changes no row of the model and writes no audit entry, and
    queues nothing to run on commit (tasks, snapshot publications)."""

    def __init__(self, model: type[models.Model], capture: Any) -> None:
        self.model, self.capture = model, capture

    def __enter__(self) -> Unchanged:
        self.before = _rows(self.model)
        self.audit = AuditEntry.objects.count()
        self.callbacks = self.capture(execute=False)
        self.queued = self.callbacks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.callbacks.__exit__(*exc)
        if exc[0] is None:
            assert _rows(self.model) == self.before
            assert AuditEntry.objects.count() == self.audit
            assert self.queued == []


@pytest.mark.parametrize("entry", REGISTRY, ids=_id)
def test_every_action_and_custom_view__declares_a_permission(entry) -> None:
    model, model_admin = entry
    undeclared = [
        name
        for func, name, _ in model_admin._get_base_actions()
        if not getattr(func, "allowed_permissions", None)
    ]
    views = getattr(model_admin, "view_permissions", {})
    unguarded = [
        pattern.name
        for pattern in _extra_views(model_admin)
        if pattern.callback.__name__ not in views
    ]

    assert not undeclared, f"{model._meta.label}: actions without permissions=: {undeclared}"
    assert not unguarded, f"{model._meta.label}: custom views without view_permissions: {unguarded}"


@pytest.mark.parametrize("who", ["viewer", "groupless"])
@pytest.mark.parametrize("entry", REGISTRY, ids=_id)
def test_every_admin_door__viewer_and_groupless_staff__403_or_no_change(
    entry, who, world, request, django_capture_on_commit_callbacks
) -> None:
    model, model_admin = entry
    client: Client = request.getfixturevalue(who)
    row = model._default_manager.order_by("pk").first()
    assert row is not None
    pk = row.pk
    statuses = {}

    with Unchanged(model, django_capture_on_commit_callbacks):
        statuses["add"] = client.post(_url(model, "add"), {}).status_code
        statuses["change"] = client.post(_url(model, "change", pk), {}).status_code
        statuses["delete"] = client.post(_url(model, "delete", pk), {"post": "yes"}).status_code
        for _, name, _ in model_admin._get_base_actions():
            response = client.post(
                _url(model, "changelist"),
                {"action": name, helpers.ACTION_CHECKBOX_NAME: [pk], "index": 0, **CONFIRMATION},
            )
            # Refused, or not offered (the list again, or back to it); Unchanged checks the rest.
            assert response.status_code in (200, 302, 403), (name, response.status_code)
        for pattern in _extra_views(model_admin):
            # A view of one row gets the walked row's key for each of its URL parameters.
            kwargs = {name: pk for name in getattr(pattern.pattern, "converters", {})}
            url = reverse(f"admin:{pattern.name}", kwargs=kwargs)
            statuses[pattern.name] = client.post(url, CONFIRMATION).status_code

    assert set(statuses.values()) == {403}, statuses


@pytest.mark.parametrize("who", ["viewer", "groupless"])
def test_admin_actions__viewer_and_groupless_staff__not_offered(who, world, request) -> None:
    """The action menus such a user gets are empty on every list, not just refused on post."""
    from django.test import RequestFactory

    client: Client = request.getfixturevalue(who)
    user = client.session and client.get(reverse("admin:index")).wsgi_request.user
    offered = {}
    for model, model_admin in REGISTRY:
        fake = RequestFactory().get("/")
        fake.user = user
        actions = set(model_admin.get_actions(fake))
        if actions:
            offered[model._meta.label] = sorted(actions)

    assert offered == {}


def test_walk__release_manager__can_use_the_doors_it_has(world, manager, publish) -> None:
    """The walk's 403s come from the roles, not from broken URLs: the same posts by a
    release manager accept a segment and disable a schedule."""
    review, task = world["review"], world["task"]
    from segments.models import CapabilitySegment

    accepted = publish(
        lambda: manager.post(
            _url(CapabilitySegment, "changelist"),
            {"action": "accept", helpers.ACTION_CHECKBOX_NAME: [review.pk], "index": 0},
        )
    )
    disabled = manager.post(
        _url(type(task), "changelist"),
        {"action": "disable_tasks", helpers.ACTION_CHECKBOX_NAME: [task.pk], "index": 0},
    )

    assert accepted.status_code == 302
    assert disabled.status_code == 302
    review.refresh_from_db()
    task.refresh_from_db()
    assert review.status == CapabilitySegment.Status.ACTIVE
    assert task.enabled is False


CONSOLE_POST = {
    "flag": "smart-compose",
    "environment": "production",
    "segment": "edge-ready",
    "action": "rollback",
    "reason": "trying the door",
    "confirmed": "yes",
    "into": "cloud-only",
}
API_CHANGES = [
    ("patch", "/api/v1/flags/smart-compose/environments/production", {"enabled": False}),
    ("post", "/api/v1/rollouts/smart-compose/production/segments/edge-ready/rollback", {}),
    ("post", "/api/v1/rollouts/smart-compose/production/kill", {"reason": "x"}),
    ("post", "/api/v1/rollouts/smart-compose/production", {}),
    (
        "post",
        "/api/v1/flags/smart-compose/models",
        {
            "name": "tiny-reply",
            "version": "9.0.0",
            "url": "https://models.example.com/9.onnx",
            "sizeBytes": 1,
            "sha256": "e" * 64,
        },
    ),
    ("patch", "/api/v1/flags/smart-compose/environments/production", {"modelVersion": "1.0.0"}),
]


@pytest.mark.parametrize("who", ["viewer", "groupless"])
def test_console_and_management_api__viewer_and_groupless_staff__403_and_no_change(
    who, world, request, django_capture_on_commit_callbacks
) -> None:
    """Every console route and every changing management API call, walked like the admin."""
    from console.urls import urlpatterns
    from rollout.models import SegmentRollout

    client: Client = request.getfixturevalue(who)
    refused = {}
    with Unchanged(SegmentRollout, django_capture_on_commit_callbacks):
        for pattern in urlpatterns:
            kwargs = {name: "smart-compose" for name in pattern.pattern.converters}
            response = client.post(reverse(pattern.name, kwargs=kwargs), CONSOLE_POST)
            refused[pattern.name] = response.status_code in (403, 405)
        for method, path, body in API_CHANGES:
            response = getattr(client, method)(path, body, content_type="application/json")
            refused[path] = response.status_code == 403

    # Pages (GET only) answer 405 to a post; the action routes answer 403.
    assert all(refused.values()), refused
