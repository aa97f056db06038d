"""Liveness and readiness endpoints for load balancers and orchestrators."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

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
