"""The served OpenAPI document is valid for the version it declares, and says what the
server does."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from openapi_spec_validator import validate

from api import openapi_examples as examples
from tests.support.demo import load_demo
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


def _media(document: dict) -> Iterator[tuple[str, str, str, dict]]:
    """(operation, "request" or status, media type, media object) of every body documented."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
                yield label, "request", media_type, media
            for code, response in operation["responses"].items():
                for media_type, media in response.get("content", {}).items():
                    yield label, code, media_type, media


def _examples(media: dict) -> list:
    values = [media["example"]] if "example" in media else []
    return values + [named["value"] for named in media.get("examples", {}).values()]


def test_schema__every_body__has_an_example(document: dict) -> None:
    missing = [(label, part) for label, part, _, media in _media(document) if not _examples(media)]

    assert len(list(_media(document))) > 80
    assert missing == []


def test_schema__every_example__valid_against_its_schema(document: dict) -> None:
    from openapi_schema_validator import OAS30Validator, oas30_format_checker

    invalid = []
    for label, part, _, media in _media(document):
        # The schema with the document's components beside it, so that its $refs resolve.
        schema = {**media["schema"], "components": document["components"]}
        validator = OAS30Validator(schema, format_checker=oas30_format_checker)
        for example in _examples(media):
            invalid += [(label, part, error.message) for error in validator.iter_errors(example)]

    assert invalid == []


def test_schema__an_invalid_example__caught_by_the_check(document: dict) -> None:
    # The check above can fail: a decision without its reason is refused.
    from openapi_schema_validator import OAS30Validator

    schema = {"$ref": "#/components/schemas/Decision", "components": document["components"]}
    decision = {key: value for key, value in examples.OFREP_DECISION.items() if key != "reason"}

    assert not OAS30Validator(schema).is_valid(decision)


def test_schema__retry_after__documented_on_every_429_and_503(document: dict) -> None:
    refusals = [
        (path, method, code, response)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for code, response in operation["responses"].items()
        if code in ("429", "503")
    ]

    assert len(refusals) >= 9
    for path, method, _, response in refusals:
        assert response["headers"]["Retry-After"]["schema"]["type"] == "integer", (method, path)


def _volatile(value: object) -> object:
    """`value` with what differs between servers (signed tokens, snapshot versions, the key
    in a stream URL) blanked."""
    if isinstance(value, dict):
        return {
            key: "…"
            if key in ("decisionToken", "snapshotVersion", "createdAt")
            else _volatile(item)
            for key, item in value.items()
        }
    if isinstance(value, str) and "/stream/v1/flags?key=efc_" in value:
        return value.split("?key=")[0]
    if isinstance(value, list):
        return [_volatile(item) for item in value]
    return value


@pytest.fixture
def demo(publish) -> None:

    load_demo(publish)


def _key(publish, scope: str) -> str:
    from access.api_keys import api_key_create
    from rollout.models import Environment

    environment = Environment.objects.get(key="production")
    return publish(lambda: api_key_create(environment=environment, scope=scope, name=scope))[1]


def test_examples__client_api__what_the_demo_server_answers(demo, publish, api) -> None:
    client_key, server_key = _key(publish, "client"), _key(publish, "server")

    evaluate = api(
        "POST",
        "/api/v1/evaluate",
        client_key,
        {"context": examples.CONTEXT, "flags": ["smart-compose"]},
    )
    single = api(
        "POST", "/ofrep/v1/evaluate/flags/smart-compose", client_key, {"context": examples.CONTEXT}
    )
    bulk = api("POST", "/ofrep/v1/evaluate/flags", client_key, {"context": examples.CONTEXT})
    configuration = api("GET", "/ofrep/v1/configuration", client_key)
    probe = api("POST", "/api/v1/probes", client_key, examples.PROBE)
    token = evaluate.json()["flags"]["smart-compose"]["metadata"]["decisionToken"]
    batch = {
        **examples.EVENTS,
        # Fresh ids: the dedupe store outlives a test run, and a repeated id counts once.
        "events": [
            {**event, "decisionToken": token, "id": f"{event['id']}-{uuid.uuid4()}"}
            for event in examples.EVENTS["events"]
        ],
    }
    events = api("POST", "/api/v1/events", client_key, batch)
    erase = api("DELETE", f"/api/v1/probes/{examples.PROBE['clientId']}", server_key)
    snapshot = api("GET", "/api/v1/snapshot", server_key)

    assert _volatile(evaluate.json()) == _volatile(examples.DECISIONS)
    assert _volatile(single.json()) == _volatile(examples.OFREP_DECISION)
    shown = {decision["key"] for decision in examples.OFREP_BULK["flags"]}
    assert _volatile([d for d in bulk.json()["flags"] if d["key"] in shown]) == _volatile(
        examples.OFREP_BULK["flags"]
    )
    assert configuration.json() == examples.OFREP_CONFIGURATION
    answer = probe.json()
    answer["decisions"]["flags"] = {
        key: decision
        for key, decision in answer["decisions"]["flags"].items()
        if key in examples.PROBE_ANSWER["decisions"]["flags"]
    }
    assert _volatile(answer) == _volatile(examples.PROBE_ANSWER)
    assert (events.status_code, events.json()) == (202, examples.EVENTS_ACCEPTED)
    assert erase.json() == examples.ERASED
    assert set(snapshot.json()) == set(examples.SNAPSHOT)


def test_examples__client_errors__the_views_texts(demo, publish, api) -> None:
    client_key = _key(publish, "client")
    samples = examples.client_errors()

    bad_context = api("POST", "/api/v1/evaluate", client_key, {"context": {"targetingKey": 5}})
    unknown_key = api("POST", "/api/v1/evaluate", "ef_unknown", {})
    server_only = api("GET", "/api/v1/snapshot", client_key)
    no_flag = api("POST", "/ofrep/v1/evaluate/flags/smart-compose-x", client_key, {})
    bad_probe = api(
        "POST", "/api/v1/probes", client_key, {**examples.PROBE, "device": {"memoryGb": "8"}}
    )
    bad_event = api(
        "POST",
        "/api/v1/events",
        client_key,
        {
            **examples.EVENTS,
            "events": [examples.EVENTS["events"][0], {**examples.EVENTS["events"][1], "ms": -1}],
        },
    )

    wrong_method = api("GET", "/api/v1/evaluate", client_key)

    assert bad_context.json() == samples[400]
    assert wrong_method.json() == samples[405]
    assert unknown_key.json() == samples[401]
    assert server_only.json() == samples[403]
    assert no_flag.json()["errorCode"] == samples[404]["errorCode"]
    assert bad_probe.json() == examples.PROBE_INVALID
    assert bad_event.json()["errorCode"] == examples.EVENTS_INVALID["errorCode"]


def test_examples__management_api__accepted_and_shaped_like_the_answers(demo, admin_client) -> None:
    def post(path: str, body: dict) -> Any:
        return admin_client.post(path, body, content_type="application/json")

    changed = admin_client.patch(
        "/api/v1/flags/inbox-digest/environments/production",
        examples.FLAG_STATE_CHANGE,
        content_type="application/json",
    )
    flags = admin_client.get("/api/v1/flags")
    started = post("/api/v1/rollouts/lead-summary/staging", examples.ROLLOUT_START)
    rolled_back = post(
        "/api/v1/rollouts/lead-summary/staging/segments/fast-computers-webgpu/rollback",
        examples.REASON,
    )
    again = post(
        "/api/v1/rollouts/lead-summary/staging/segments/fast-computers-webgpu/pause",
        examples.REASON,
    )
    killed = post("/api/v1/rollouts/lead-summary/staging/kill", examples.REASON)
    registered = post("/api/v1/flags/smart-compose/models", examples.MODEL_REGISTER)
    served = admin_client.patch(
        "/api/v1/flags/smart-compose/environments/staging",
        examples.MODEL_SERVE,
        content_type="application/json",
    )
    models = admin_client.get("/api/v1/flags/smart-compose/models")

    assert changed.status_code == 200, changed.content
    assert changed.json() == {**examples.FLAG_STATE, "enabled": False}
    assert set(flags.json()[0]) == set(examples.FLAG)
    assert set(flags.json()[0]["states"][0]) == set(examples.FLAG_STATE)
    assert started.status_code == 201, started.content
    plan = started.json()
    assert set(plan) == set(examples.ROLLOUT)
    assert plan["targetRung"] == examples.ROLLOUT["targetRung"]
    assert plan["excludedSegments"] == examples.ROLLOUT["excludedSegments"]
    assert set(plan["segments"][0]) == set(examples.SEGMENT_ROLLOUT)
    assert rolled_back.status_code == 200, rolled_back.content
    assert rolled_back.json()["state"] == examples.ROLLED_BACK["state"]
    assert (again.status_code, again.json()) == (409, examples.MANAGEMENT_ERRORS["409"])
    assert killed.status_code == 200, killed.content
    assert registered.status_code == 201, registered.content
    assert _volatile(registered.json()) == _volatile(examples.MODEL_REGISTERED)
    assert served.json()["modelVersion"] == examples.MODEL_SERVE["modelVersion"]
    current = next(m for m in models.json() if m["version"] == examples.MODEL["version"])
    assert _volatile(current) == _volatile(examples.MODEL)
