"""The WSGI entry point routes the client API to the lean handler, the rest to the full one."""

from __future__ import annotations

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest

from config.wsgi import application
from tests.support.metrics import scrape, total

pytestmark = pytest.mark.django_db


def _call(path: str, method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, object] = {"PATH_INFO": path, "REQUEST_METHOD": method}
    setup_testing_defaults(environ)
    environ["wsgi.input"] = io.BytesIO(b"{}")
    environ["CONTENT_LENGTH"] = "2"
    environ["CONTENT_TYPE"] = "application/json"
    seen: dict[str, object] = {}

    def start_response(status: str, headers: list[tuple[str, str]], *args: object) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(application(environ, start_response))
    return str(seen["status"]), dict(seen["headers"]), body  # type: ignore[arg-type]


def test_wsgi__client_api__lean_stack_still_answers_json_errors() -> None:
    status, headers, body = _call("/api/v1/evaluate", "POST")

    assert status.startswith("401")
    assert json.loads(body)["errorDetails"].startswith("Authorization:")
    assert "X-Frame-Options" not in headers  # no clickjacking middleware on the lean stack
    assert headers["X-Content-Type-Options"] == "nosniff"  # security headers kept


def test_wsgi__client_api__lean_stack_still_measured() -> None:
    name, labels = "edgeflags_http_requests_total", {"route": "/api/v1/evaluate", "status": "401"}
    before = total(scrape(), name, **labels)

    _call("/api/v1/evaluate", "POST")

    assert total(scrape(), name, **labels) - before == 1


def test_wsgi__everything_else__full_stack() -> None:
    status, headers, _ = _call("/healthz")

    assert status.startswith("200")
    assert headers["X-Frame-Options"] == "DENY"
