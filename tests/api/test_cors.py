"""CORS on the client API: any origin by default, narrowed per environment in the admin,
preflights 204, and never on the admin, the console or the management API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from rollout.models import AuditEntry, Environment

pytestmark = pytest.mark.django_db

SITE = "https://shop.example.com"
CLIENT_ENDPOINTS = [
    ("POST", "/api/v1/evaluate"),
    ("POST", "/ofrep/v1/evaluate/flags"),
    ("POST", "/ofrep/v1/evaluate/flags/some-flag"),
    ("GET", "/ofrep/v1/configuration"),
    ("POST", "/api/v1/probes"),
    ("POST", "/api/v1/events"),
    ("GET", "/api/v1/network/ping"),
    ("GET", "/api/v1/network/download"),
    ("GET", "/api/v1/privacy"),  # the notice a consent banner on the customer's site renders
]
NOT_CORS = [
    ("GET", "/api/v1/flags"),  # management API (tokens)
    ("POST", "/api/v1/rollouts/f/production/kill"),
    ("GET", "/api/v1/snapshot"),  # server keys: never from a browser
    ("POST", "/api/v1/privacy/erase"),  # server keys: from the customer's backend
    ("GET", "/admin/"),
    ("GET", "/admin/console/"),
    ("GET", "/api/v1/schema"),
]


def _preflight(client: Client, path: str, method: str, origin: str = SITE) -> Any:
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type,if-none-match",
    )


@pytest.mark.parametrize(("method", "path"), CLIENT_ENDPOINTS)
def test_preflight__client_endpoint__204_with_the_headers_clients_send(
    client, method, path
) -> None:
    response = _preflight(client, path, method)

    assert response.status_code == 204
    assert response.content == b""
    assert "Content-Length" not in response
    assert response["Access-Control-Allow-Origin"] == "*"
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "x-api-key", "content-type", "if-none-match"} <= allowed
    assert method in response["Access-Control-Allow-Methods"]
    assert int(response["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in response


@pytest.mark.parametrize(("method", "path"), NOT_CORS)
def test_preflight__admin_console_management__no_cors_headers(client, method, path) -> None:
    response = _preflight(client, path, method)

    assert "Access-Control-Allow-Origin" not in response
    assert response.status_code != 204


def test_bulk_from_another_origin__readable_with_etag_exposed(api, client_key) -> None:
    response = api("POST", "/ofrep/v1/evaluate/flags", client_key, {"context": {}}, Origin=SITE)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"etag", "retry-after"} <= exposed
    assert response["ETag"]


def test_error_from_another_origin__readable(api) -> None:
    response = api("POST", "/api/v1/evaluate", "no-such-key", {}, Origin=SITE)

    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == "*"  # the page can read why


def test_management_answer__no_cors_headers(api, client_key) -> None:
    response = api("GET", "/api/v1/flags", None, Origin=SITE)

    assert "Access-Control-Allow-Origin" not in response


def _narrow(environment: Environment, publish: Callable[..., Any], origins: str) -> None:
    environment.allowed_origins = origins
    environment.full_clean()
    publish(environment.save)


def test_allowed_origins__listed_origin__served(api, client_key, environment, publish) -> None:
    _narrow(environment, publish, f"{SITE}\nhttp://localhost:3000\n")

    for origin in (SITE, "http://localhost:3000"):
        response = api("POST", "/ofrep/v1/evaluate/flags", client_key, {}, Origin=origin)
        assert response.status_code == 200, origin


def test_allowed_origins__other_origin__403_naming_it_before_any_effect(
    api, client_key, environment, publish
) -> None:
    _narrow(environment, publish, SITE)
    probe = {"probeId": "p1", "clientId": "c1", "device": {"memoryGb": 8}}

    evaluated = api("POST", "/api/v1/evaluate", client_key, {}, Origin="https://evil.example")
    probed = api("POST", "/api/v1/probes", client_key, probe, Origin="https://evil.example")

    assert evaluated.status_code == 403
    assert evaluated.json()["errorDetails"] == (
        "Origin: https://evil.example is not an allowed origin of this environment"
    )
    assert probed.status_code == 403
    from capability_probe.models import ClientProfile

    assert not ClientProfile.objects.exists()


def test_allowed_origins__server_without_origin__not_asked(
    api, client_key, environment, publish
) -> None:
    _narrow(environment, publish, SITE)

    assert api("POST", "/api/v1/evaluate", client_key, {}).status_code == 200


def test_admin_form__origins_edited__validated_audited_and_applied(
    client, api, client_key, environment
) -> None:
    admin = User.objects.create_superuser("root", password="pw-for-tests-only")
    client.force_login(admin)
    url = f"/admin/rollout/environment/{environment.pk}/change/"
    form = {"key": environment.key, "name": environment.name, "description": ""}

    refused = client.post(url, {**form, "allowed_origins": "https://shop.example.com/path"})
    saved = client.post(url, {**form, "allowed_origins": SITE})

    assert refused.status_code == 200
    assert "not an origin: &#x27;https://shop.example.com/path&#x27;" in refused.content.decode()
    assert saved.status_code == 302
    environment.refresh_from_db()
    assert environment.origin_set == {SITE}
    entry = AuditEntry.objects.filter(action__contains="environment").latest("pk")
    assert SITE in str(entry.after)
    client.logout()
    from rollout.snapshots.store import store

    store.reset()
    assert (
        api("POST", "/api/v1/evaluate", client_key, {}, Origin="https://x.example").status_code
        == 403
    )


@pytest.mark.parametrize(
    "origins",
    [
        "shop.example.com",  # no scheme
        "ftp://shop.example.com",
        "https://Shop.example.com",  # browsers send lower case
        "https://shop.example.com:99999999",
        "https://shop.example.com\x00",
        "https://*.example.com",
    ],
)
def test_allowed_origins__not_an_origin__refused_naming_the_field(environment, origins) -> None:
    from django.core.exceptions import ValidationError

    environment.allowed_origins = origins
    with pytest.raises(ValidationError) as raised:
        environment.full_clean()
    assert "allowed_origins" in raised.value.message_dict
