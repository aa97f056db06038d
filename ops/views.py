"""Liveness, readiness and metrics endpoints for load balancers, orchestrators and Prometheus."""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from ops import metrics as metrics_registry
from ops.health import run_checks


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive; touches no dependency."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Each dependency with ok/failing and a reason; 503 when a required one fails."""
    results = run_checks()
    required_failing = [r.name for r in results if r.required and not r.ok]
    optional_failing = [r.name for r in results if not r.required and not r.ok]
    if required_failing:
        status = "failing"
    elif optional_failing:
        status = "degraded"
    else:
        status = "ok"
    body = {
        "status": status,
        "failing": required_failing + optional_failing,
        "checks": {
            r.name: {
                "status": "ok" if r.ok else "failing",
                "required": r.required,
                "reason": r.reason,
                "latency_ms": r.latency_ms,
            }
            for r in results
        },
    }
    response = JsonResponse(body, status=503 if required_failing else 200)
    response["Cache-Control"] = "no-store"
    return response


def _scrape_refused(request: HttpRequest) -> JsonResponse | None:
    """Why a scrape is refused, or None when it may go on."""
    token: str = settings.EDGEFLAGS_METRICS_TOKEN
    if not token:
        if settings.DEBUG:
            return None
        detail = "metrics are off: set EDGEFLAGS_METRICS_TOKEN to scrape them"
        return JsonResponse({"detail": detail}, status=403)
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), token.encode()
    ):
        return None
    refused = JsonResponse({"detail": "a valid metrics bearer token is required"}, status=401)
    refused["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return refused


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics of every process sharing the metrics directory.

    With EDGEFLAGS_METRICS_TOKEN set, a scraper must present it as a bearer token; without
    one the endpoint is open in DEBUG only: the metrics name environments and show traffic.
    """
    refused = _scrape_refused(request)
    if refused is not None:
        return refused
    response = HttpResponse(metrics_registry.render(), content_type=metrics_registry.CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
