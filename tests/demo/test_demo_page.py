"""The demo page is opt-in, read-only on GET, and confined to its own environment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client, override_settings

from demo.data import DEMO_ENVIRONMENT, demo_client_key
from rollout.models import ApiKey
from rollout.snapshots.store import hash_api_key
from tests.support.demo import load_demo


@pytest.fixture
def demo_loaded(db: None, publish: Callable[..., Any]) -> None:
    load_demo(publish)


@override_settings(EDGEFLAGS_DEMO=False)
@pytest.mark.parametrize(("method", "path"), [("get", "/demo/"), ("post", "/demo/compose")])
def test_demo__switched_off__404(client: Client, db: None, method: str, path: str) -> None:
    response = getattr(client, method)(path)
    assert response.status_code == 404


@override_settings(EDGEFLAGS_DEMO=True)
def test_demo_page__not_loaded__503_and_creates_nothing(client: Client, db: None) -> None:
    response = client.get("/demo/")
    assert response.status_code == 503
    assert b"load_demo" in response.content
    assert ApiKey.objects.count() == 0


@override_settings(EDGEFLAGS_DEMO=True)
def test_demo_page__loaded__embeds_the_demo_environment_key(client: Client, demo_loaded) -> None:
    keys_before = ApiKey.objects.count()
    response = client.get("/demo/")
    assert response.status_code == 200
    raw = demo_client_key()
    assert response.context["demo_config"]["apiKey"] == raw
    assert '<script id="demo-config" type="application/json">' in response.content.decode()
    key = ApiKey.objects.get(key_hash=hash_api_key(raw))
    assert key.environment.key == DEMO_ENVIRONMENT
    assert key.scope == ApiKey.Scope.CLIENT
    assert ApiKey.objects.count() == keys_before  # a GET creates nothing


@override_settings(EDGEFLAGS_DEMO=True)
def test_demo_page__key_revoked__503_not_a_new_key(client: Client, demo_loaded) -> None:
    ApiKey.objects.filter(key_hash=hash_api_key(demo_client_key())).update(
        revoked_at="2026-01-01T00:00:00Z"
    )
    keys_before = ApiKey.objects.count()
    assert client.get("/demo/").status_code == 503
    assert ApiKey.objects.count() == keys_before


@override_settings(EDGEFLAGS_DEMO=True)
def test_demo_key__evaluates_only_the_demo_environment(client: Client, demo_loaded) -> None:
    response = client.post(
        "/api/v1/evaluate",
        data={"context": {"targetingKey": "demo-visitor"}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {demo_client_key()}",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["environment"] == DEMO_ENVIRONMENT
    assert body["flags"]["smart-compose"]["reason"] != "DISABLED"


@override_settings(EDGEFLAGS_DEMO=True)
@pytest.mark.parametrize(
    ("body", "field"),
    [(b"[1, 2]", "body"), (b'"text"', "body"), (b"{bad", "body"), (b'{"message": 5}', "message")],
)
def test_demo_compose__not_an_object__400_naming_it(
    client: Client, db: None, body: bytes, field: str
) -> None:
    response = client.post("/demo/compose", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errorDetails"].startswith(f"{field}:")
