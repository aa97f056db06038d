"""CORS for the client API: django-cors-headers, with two things of our own.

- A preflight is answered 204 No Content (the library answers 200 with an empty body): the
  status browsers and the Fetch standard expect of a bodiless answer, without the
  Content-Length a 204 must not carry (RFC 9110 §8.6).
- An environment may narrow the origins its keys serve (`Environment.allowed_origins`):
  a preflight carries no key, so it is answered for any origin, and the request itself is
  refused with a 403 naming the origin (`origin_refusal`, asked by api.client.authenticate)
  before it has any effect; a caller without an Origin header (a server) is not a browser
  and is not asked.
"""

from __future__ import annotations

from corsheaders.middleware import CorsMiddleware as _CorsMiddleware
from django.http import HttpRequest
from django.http.response import HttpResponseBase


class CorsMiddleware(_CorsMiddleware):
    def check_preflight(self, request: HttpRequest) -> HttpResponseBase | None:
        response = super().check_preflight(request)
        if response is not None:
            response.status_code = 204
            del response["Content-Length"]
        return response


def origin_refusal(request: HttpRequest, allowed: frozenset[str]) -> str | None:
    """Why this request's origin may not use the key (None: it may)."""
    return refused_origin(request.META.get("HTTP_ORIGIN"), allowed)


def refused_origin(origin: str | None, allowed: frozenset[str]) -> str | None:
    """`origin_refusal` from the Origin header's value (any server: the change stream too)."""
    if not allowed or not origin or origin in allowed:
        return None
    return f"Origin: {origin[:200]} is not an allowed origin of this environment"
