"""Shared fixtures: environments, keys and flags created through the real services."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from access.api_keys import api_key_create
from api import client as client_api
from api.rate_limits import limits_from_settings
from rollout.models import Environment
from rollout.services import environment_create
from rollout.snapshots.store import store


@pytest.fixture(autouse=True)
def _fresh_snapshot_store() -> Iterator[None]:
    """Each test starts with an empty in-process snapshot store (as a new process would)."""
    store.reset()
    yield
    store.reset()


@pytest.fixture(autouse=True)
def _fresh_rate_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with full rate-limit buckets (tests share the address 127.0.0.1)."""
    monkeypatch.setattr(client_api, "rate_limits", limits_from_settings())


@pytest.fixture
def publish(django_capture_on_commit_callbacks: Any) -> Callable[[Callable[[], Any]], Any]:
    """Run `change` and the snapshot publishing its commit triggers; return its result.

    Tests run inside a transaction that never commits, so on-commit publishing is run here
    explicitly, as a commit would run it.
    """

    def run(change: Callable[[], Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            result = change()
        store.reset()
        return result

    return run


@pytest.fixture
def environment(db: None, publish: Callable[..., Any]) -> Environment:
    return publish(lambda: environment_create(key="production", name="Production"))


@pytest.fixture
def client_key(environment: Environment, publish: Callable[..., Any]) -> str:
    return publish(lambda: api_key_create(environment=environment, scope="client", name="web app"))[
        1
    ]


@pytest.fixture
def server_key(environment: Environment, publish: Callable[..., Any]) -> str:
    return publish(lambda: api_key_create(environment=environment, scope="server", name="backend"))[
        1
    ]


@pytest.fixture
def api(client: Client) -> Callable[..., Any]:
    """POST/GET JSON to the client API with a key."""

    def call(method: str, path: str, key: str | None, body: Any = None, **headers: str) -> Any:
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        if key is not None:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        if method == "GET":
            return client.get(path, **extra)
        if method == "DELETE":
            return client.delete(path, **extra)
        data = body if isinstance(body, (bytes, str)) else __import__("json").dumps(body or {})
        return client.post(path, data=data, content_type="application/json", **extra)

    return call


pytest_plugins = ["tests.support.databases", "tests.support.rollouts"]
