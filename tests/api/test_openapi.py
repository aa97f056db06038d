"""The served OpenAPI document is valid for the version it declares, and says what the
server does."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from django.test import Client
from openapi_spec_validator import validate

from tests.support.processes import REPO, child_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(admin_client: Client) -> dict:
    response = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/docs/?script="])
def test_docs__anonymous_outside_debug__refused(client: Client, path: str) -> None:
    assert client.get(path).status_code in (401, 403)


def test_docs__staff__swagger_ui_from_the_package(admin_client: Client) -> None:
    page = admin_client.get("/api/docs/").content.decode()

    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()
    assert "<script>" not in page  # the start-up script is a file of its own (CSP)


@pytest.mark.parametrize(("value", "public"), [("true", True), ("false", False), ("", False)])
def test_docs_public_setting__chooses_the_permission(value: str, public: bool) -> None:
    env = child_env({"EDGEFLAGS_API_DOCS_PUBLIC": value or None, "DEBUG": None})
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.SPECTACULAR_SETTINGS['SERVE_PERMISSIONS'][0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()

    assert out == (
        "rest_framework.permissions.AllowAny"
        if public
        else "rest_framework.permissions.IsAdminUser"
    )


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


def _operations(patterns: list, prefix: str = "") -> list[str]:
    """Every route under /api/v1/ and /ofrep/, as OpenAPI path templates."""
    from django.urls import URLResolver

    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found += _operations(pattern.url_patterns, prefix + str(pattern.pattern))
            continue
        route = prefix + str(pattern.pattern)
        route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route).strip("^$")  # re_path
        route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)  # path("…/<path:key>")
        if route.startswith(("api/v1/", "ofrep/")):
            found.append("/" + route.replace("client_id", "clientId"))
    return found


def test_schema__every_api_route_has_an_operation(document: dict) -> None:
    from config.urls import urlpatterns

    routes = _operations(urlpatterns)

    assert len(routes) >= 13
    assert sorted(set(routes) - set(document["paths"])) == []


def test_schema__probe_fields__the_parsers_fields(document: dict) -> None:
    from capability_probe.schema import FIELDS, TOP_LEVEL

    probe = document["paths"]["/api/v1/probes"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]

    assert set(probe["properties"]) == TOP_LEVEL
    for section, fields in FIELDS.items():
        assert set(probe["properties"][section]["properties"]) == set(fields)


def test_schema__every_operation_documents_its_auth_errors(document: dict) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "401" in operation["responses"], (method, path)
            assert operation["security"], (method, path)


def test_schema__management_404_of_an_unrouted_path__documented(
    document: dict, admin_client: Client
) -> None:
    # Found by schemathesis: a line break in a path parameter matches no route, and
    # handler404 answers with the client API's body, which the 404 must admit.
    response = admin_client.get("/api/v1/rollouts/a%0Ab/production")
    documented = document["paths"]["/api/v1/rollouts/{flag}/{environment}"]["get"]["responses"]
    body = documented["404"]["content"]["application/json"]["schema"]

    assert response.status_code == 404
    assert response.json()["errorCode"] == "NOT_FOUND"
    assert {"$ref": "#/components/schemas/ClientError"} in body["oneOf"]


def test_schema__segment_rollout_times__nullable_before_the_rollout_starts(document: dict) -> None:
    fields = document["components"]["schemas"]["SegmentRolloutOutput"]["properties"]

    assert fields["stageStartedAt"]["nullable"] is True
    assert fields["lastCheckedAt"]["nullable"] is True


def test_schema__segment_action__the_actions_the_service_takes(document: dict) -> None:
    from rollout.guardrails.states import MANUAL_ACTIONS

    path = "/api/v1/rollouts/{flag}/{environment}/segments/{segment}/{action}"
    (action,) = [p for p in document["paths"][path]["post"]["parameters"] if p["name"] == "action"]

    assert action["in"] == "path"
    assert sorted(action["schema"]["enum"]) == sorted(MANUAL_ACTIONS)
