"""The served OpenAPI document is valid for the version it declares, and says what the
server does."""

from __future__ import annotations

import pytest
from django.test import Client
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(client: Client) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def test_schema__valid_openapi_3_0(document: dict) -> None:
    assert document["openapi"] == "3.0.3"
    validate(
        document
    )  # raises on any construct 3.0 does not have (e.g. a numeric exclusiveMinimum)


def test_schema__event_dedupe_window__the_servers_setting(document: dict, settings) -> None:
    batch = document["paths"]["/api/v1/events"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    event_id = batch["properties"]["events"]["items"]["properties"]["id"]

    assert f"within {settings.EDGEFLAGS_EVENT_DEDUPE_S / 3600:g} h" in event_id["description"]
