"""The demo client page (/demo/) and the simulated cloud inference it calls.

Opt-in: both answer 404 unless EDGEFLAGS_DEMO is true (`make run` sets it). The page embeds
the client key of the dedicated `demo` environment, which `load_demo` creates; a page view
never creates anything.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

import orjson
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from demo.data import TEMPLATES, DemoNotLoaded, demo_client_key

# Device classes the page can emulate, as overrides of what the probe reports.
EMULATED_CLASSES: dict[str, dict[str, object]] = {
    "high-end": {
        "device": {"memoryGb": 16, "cores": 12, "webgpu": True, "shaderF16": True},
        "network": {"rttMs": 50, "downlinkMbps": 10, "effectiveType": "4g", "saveData": False},
        "benchmark": {"ms": 9},
    },
    "no-webgpu": {
        "device": {"memoryGb": 8, "cores": 8, "webgpu": False, "shaderF16": False},
        "network": {"rttMs": 80, "downlinkMbps": 10, "effectiveType": "4g", "saveData": False},
        "benchmark": {"ms": 35},
    },
    "low-memory": {
        "device": {"memoryGb": 1, "cores": 4, "webgpu": False, "shaderF16": False},
        "network": {"rttMs": 100, "downlinkMbps": 5, "effectiveType": "4g", "saveData": False},
        "benchmark": {"ms": 450},
    },
    "slow-network": {
        "device": {"memoryGb": 2, "cores": 8, "webgpu": False, "shaderF16": False},
        "network": {
            "rttMs": 2000,
            "downlinkMbps": 0.1,
            "effectiveType": "2g",
            "saveData": False,
            # What probe.js would have measured on such a link (requirements read it).
            "measuredRttMs": 2000,
            "measuredRttSamples": 5,
            "measuredDownlinkMbps": 0.1,
            "measuredDownlinkSamples": 1,
        },
        "benchmark": {"ms": 300},
    },
    # Browsers as they are: Safari and Firefox have no navigator.deviceMemory and no
    # navigator.connection (null removes what this browser reported), so the link is the one
    # probe.js measures on this page and the memory is the server's estimate.
    "iphone-safari": {
        "device": {"memoryGb": None, "cores": 4, "webgpu": True, "shaderF16": True},
        "network": {"rttMs": None, "downlinkMbps": None, "effectiveType": None, "saveData": None},
        "platform": {"os": "iOS", "browser": "Safari", "mobile": True},
        "benchmark": {"ms": 22},
    },
    # Firefox on macOS has no WebGPU either (no navigator.gpu: unknown, not false).
    "mac-firefox": {
        "device": {"memoryGb": None, "cores": 10, "webgpu": None, "shaderF16": None},
        "network": {"rttMs": None, "downlinkMbps": None, "effectiveType": None, "saveData": None},
        "platform": {"os": "macOS", "browser": "Firefox", "mobile": False},
        "benchmark": {"ms": 14},
    },
    "save-data": {
        "device": {"memoryGb": 16, "cores": 12, "webgpu": True, "shaderF16": True},
        "network": {"rttMs": 50, "downlinkMbps": 10, "effectiveType": "4g", "saveData": True},
        "benchmark": {"ms": 9},
    },
    "offline": {},
}


def demo_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """404 unless the demo is switched on (EDGEFLAGS_DEMO)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.EDGEFLAGS_DEMO:
            raise Http404("the demo is off (EDGEFLAGS_DEMO)")
        return view(request, *args, **kwargs)

    return wrapped


@demo_only
@require_GET
def demo_page(request: HttpRequest) -> HttpResponse:
    """A small CRM screen whose smart-compose panel renders the rung this client gets."""
    emulate = request.GET.get("emulate", "")
    if emulate and emulate not in EMULATED_CLASSES:
        return HttpResponse(
            f"emulate: unknown class {emulate!r}; one of {', '.join(EMULATED_CLASSES)}",
            status=400,
            content_type="text/plain",
        )
    try:
        api_key = demo_client_key()
    except DemoNotLoaded:
        return HttpResponse(
            "The demo has no client key yet: run `manage.py load_demo`.",
            status=503,
            content_type="text/plain",
        )
    return render(
        request,
        "demo/index.html",
        {
            "emulate": emulate,
            "classes": list(EMULATED_CLASSES),
            # Read by static/edgeflags/demo.js from a JSON data block (json_script).
            "demo_config": {
                "apiKey": api_key,
                "emulate": emulate,
                "overrides": EMULATED_CLASSES.get(emulate) or {},
                "templates": TEMPLATES,
            },
        },
    )


WORDS = re.compile(r"[A-Za-z']+")


@demo_only
@csrf_exempt
@require_POST
def demo_compose(request: HttpRequest) -> JsonResponse:
    """Simulated server-side inference: realistic latency, replies shaped by the message."""
    try:
        body = orjson.loads(request.body or b"{}")
    except orjson.JSONDecodeError:
        return JsonResponse({"errorDetails": "body: malformed JSON"}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"errorDetails": "body: must be a JSON object"}, status=400)
    message = body.get("message", "")
    if not isinstance(message, str):
        return JsonResponse({"errorDetails": "message: must be a string"}, status=400)
    message = message[:2000]
    time.sleep(random.uniform(0.25, 0.6))  # noqa: S311 - a simulated model's latency
    topic = next((w for w in WORDS.findall(message) if len(w) > 6), "your request").lower()
    return JsonResponse(
        {
            "model": "cloud-reply-v2",
            "suggestions": [
                f"Thanks for your note about {topic} — here is what I suggest as next steps.",
                f"Happy to help with {topic}. Could we schedule 20 minutes this week?",
                "I've shared the details with our team and will follow up by tomorrow.",
            ],
        }
    )
