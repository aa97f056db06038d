"""Lean HTTP helpers for the client API's hot path: JSON in and out, errors, ETags.

The client endpoints are plain Django views (not DRF) because they are the hot path: DRF's
request wrapping and content negotiation cost about 40 % of the throughput budget.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse

# Every 503 tells clients when to try again (RFC 9110 §10.2.3): the outages it reports (no
# snapshot yet, the database or the telemetry buffer down) last seconds, not milliseconds.
SERVICE_UNAVAILABLE_RETRY_AFTER_S = 5


class ApiError(Exception):
    """A client error answered as JSON: OFREP's {errorCode, errorDetails} shape."""

    def __init__(
        self,
        status: int,
        code: str,
        details: str,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(details)
        self.status = status
        self.code = code
        self.details = details
        self.key = key
        self.headers = headers or {}

    def response(self) -> HttpResponse:
        body: dict[str, Any] = {"errorCode": self.code, "errorDetails": self.details}
        if self.key is not None:
            body = {"key": self.key, **body}
        response = json_response(body, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        if self.status == 503 and "Retry-After" not in self.headers:
            response["Retry-After"] = str(SERVICE_UNAVAILABLE_RETRY_AFTER_S)
        if self.status == 401:
            # RFC 9110 §11.6.1: a 401 names the scheme the server accepts.
            response["WWW-Authenticate"] = 'Bearer realm="edgeflags"'
        if self.status == 429:
            # Counted and logged in aggregate (api.rate_limits.RefusalLog): one line per
            # interval, not Django's WARNING line per refused request.
            response._has_been_logged = True  # type: ignore[attr-defined]
        return response


def json_response(body: Any, status: int = 200) -> HttpResponse:
    """An application/json response serialised with orjson (floats stay floats)."""
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")


def read_json_body(request: HttpRequest, limit: int | None = None) -> dict[str, Any]:
    """The request body as a JSON object; 413 when larger than `limit` (default
    EDGEFLAGS_MAX_BODY_BYTES), 400 naming the problem."""
    limit = limit or settings.EDGEFLAGS_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if request.META.get("HTTP_TRANSFER_ENCODING") and not request.META.get("CONTENT_LENGTH"):
        # WSGI hands a body without Content-Length to Django as empty: refuse it rather
        # than evaluate a context the client did not send.
        raise ApiError(411, "LENGTH_REQUIRED", "Content-Length: required (no chunked bodies)")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"body: larger than {limit} bytes")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"body: larger than {limit} bytes")
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "PARSE_ERROR", f"body: malformed JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "PARSE_ERROR", "body: must be a JSON object")
    return body


def etag_of(body: bytes) -> str:
    """A strong ETag over a response body."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def not_modified(request: HttpRequest, etag: str) -> bool:
    """True when the client's If-None-Match already names `etag`."""
    header = request.META.get("HTTP_IF_NONE_MATCH")
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in candidates


def cached_json_response(request: HttpRequest, body_bytes: bytes, etag: str) -> HttpResponse:
    """200 with the body and its ETag, or 304 when the client has it already."""
    if not_modified(request, etag):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body_bytes, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


# Paths whose callers are programs: their 404s are JSON like every other answer there.
_API_PREFIXES = ("/api/", "/ofrep/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: JSON under the API prefixes, Django's page elsewhere."""
    if request.path.startswith(_API_PREFIXES):
        return json_response(
            {"errorCode": "NOT_FOUND", "errorDetails": f"path: no endpoint {request.path}"},
            status=404,
        )
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)
