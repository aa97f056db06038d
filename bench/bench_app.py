"""A bare Django WSGI app for `http_bench.py`: the floor that evaluate is compared against.

One URL, `POST /bench/fixed`, answers a fixed JSON body of `BENCH_BODY_BYTES` bytes (the size
of a typical evaluate response, measured by the benchmark). No database, no middleware, no
installed apps: what is left is the WSGI server, Django's request handling and URL routing,
reading the request body and writing the response, i.e. what every Django view pays for.

Served like the real app: `granian --interface wsgi ... bench.bench_app:application`.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_POST

BODY_BYTES_VARIABLE = "BENCH_BODY_BYTES"
DEFAULT_BODY_BYTES = 3000


def fixed_body(size: int) -> bytes:
    """A JSON object of exactly `size` bytes (at least the 10 of the empty padding)."""
    prefix, suffix = b'{"pad":"', b'"}'
    return prefix + b"x" * max(0, size - len(prefix) - len(suffix)) + suffix


BODY = fixed_body(int(os.environ.get(BODY_BYTES_VARIABLE, DEFAULT_BODY_BYTES)))


@require_POST
def fixed_json(request: HttpRequest) -> HttpResponse:
    """Read the request body as evaluate does, then answer the fixed bytes."""
    request.read()
    return HttpResponse(BODY, content_type="application/json")


urlpatterns = [path("bench/fixed", fixed_json)]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-app-only"),
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={},
        USE_TZ=True,
        USE_I18N=False,
    )

application = get_wsgi_application()  # sets Django up
