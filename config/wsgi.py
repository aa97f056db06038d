"""WSGI entry point: `config.wsgi:application` (granian or gunicorn).

The client API's hot path (evaluate, OFREP, probes, snapshot) authenticates with API keys
and uses neither sessions, users, CSRF nor messages; it is served by a second Django handler
whose middleware is only the request measurement (counts, metrics), CORS and the security
headers.
Measured: the full middleware stack is about
a quarter of an evaluate request's CPU time. Everything else goes through the full stack.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

full_application = get_wsgi_application()

LEAN_PATHS = (
    "/api/v1/evaluate",
    "/api/v1/probes",
    "/api/v1/events",
    "/api/v1/snapshot",
    "/ofrep/",
)
# The same order as in settings.MIDDLEWARE: the measurement first, so it times the rest.
LEAN_MIDDLEWARE = [
    "ops.request_log.RequestLogMiddleware",
    "api.cors.CorsMiddleware",  # customers' pages on their own origins (api/cors.py)
    "django.middleware.security.SecurityMiddleware",
]


class LeanWSGIHandler(WSGIHandler):
    """Django's handler with only LEAN_MIDDLEWARE (settings.MIDDLEWARE is left as it is)."""

    def load_middleware(self, is_async: bool = False) -> None:
        from django.conf import settings

        # load_middleware reads settings.MIDDLEWARE; swap it for the duration of the load,
        # which happens once, at import, before any request is served.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = LEAN_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


lean_application = LeanWSGIHandler()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Route the client API to the lean handler and everything else to the full one."""
    if environ.get("PATH_INFO", "").startswith(LEAN_PATHS):
        return lean_application(environ, start_response)
    return full_application(environ, start_response)
