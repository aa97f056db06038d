"""What the client and management API did, written for operators without naming any client.

By default each process writes one INFO line per interval (EDGEFLAGS_REQUEST_LOG_INTERVAL_S)
with its request counts by route and status and the slowest request: a fleet polling every few
seconds would otherwise write millions of lines a day that say nothing a counter doesn't.
EDGEFLAGS_ACCESS_LOG=true adds one JSON line per request, for debugging.

Neither kind names a client: a request is known by its route pattern, never its path (a probe
erasure's path holds the raw client id), and no query string, header, address or body is
written. `ApiPathsRedacted` does the same for Django's own request logger.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from ops import metrics

logger = logging.getLogger("edgeflags.requests")

API_PREFIXES = ("/api/v1/", "/ofrep/")
NO_ROUTE = "(no route)"
# Pages outside the API (admin, console, docs, health) share one metrics label: the admin
# alone has hundreds of routes, each a dozen histogram series, for requests that are rare.
OTHER_ROUTE = "(other)"


def route_label(request: HttpRequest) -> str:
    """The URL pattern the request matched ("/api/v1/probes/<path:client_id>"), not its path."""
    match = getattr(request, "resolver_match", None)
    return f"/{match.route}" if match is not None and match.route else NO_ROUTE


class RequestCounts:
    """Requests by (route, status) and the slowest one; one summary line per interval."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic):
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, int]] = Counter()
        self._slowest_ms = 0.0
        self._since = clock()

    def record(self, route: str, status: int, duration_ms: float) -> None:
        now = self._clock()
        with self._lock:
            self._counts[(route, status)] += 1
            self._slowest_ms = max(self._slowest_ms, duration_ms)
            if now - self._since < self.interval_s:
                return
            counts, slowest, since = self._counts, self._slowest_ms, self._since
            self._counts, self._slowest_ms, self._since = Counter(), 0.0, now
        detail = ", ".join(f"{name} {code}: {n}" for (name, code), n in sorted(counts.items()))
        logger.info(
            "api: %d request(s) in the last %.0f s, slowest %.1f ms (%s)",
            sum(counts.values()),
            now - since,
            slowest,
            detail,
        )


class RequestLogMiddleware:
    """Counts every request under the API prefixes; writes the per-request line when asked.
    Every request, API or not, goes into the request metrics."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response
        self.access_log: bool = settings.EDGEFLAGS_ACCESS_LOG
        self.counts = RequestCounts(settings.EDGEFLAGS_REQUEST_LOG_INTERVAL_S)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        duration_s = time.perf_counter() - started
        if not request.path.startswith(API_PREFIXES):
            _measure(OTHER_ROUTE, request, response.status_code, duration_s)
            return response
        duration_ms = duration_s * 1000
        route = route_label(request)
        _measure(route, request, response.status_code, duration_s)
        self.counts.record(route, response.status_code, duration_ms)
        if self.access_log:
            line = {
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "ms": round(duration_ms, 2),
            }
            logger.info("request %s", orjson.dumps(line).decode())
        return response


def _measure(route: str, request: HttpRequest, status: int, duration_s: float) -> None:
    metrics.http_requests.labels(route, metrics.method_label(request.method), str(status)).inc()
    metrics.http_request_duration.labels(route).observe(duration_s)


class ApiPathsRedacted(logging.Filter):
    """For Django's `django.request` logger: under the API prefixes, 4xx lines are dropped
    (RequestLogMiddleware counts them; a client retrying a 401 or 429 would write one line per
    request) and the path in 5xx lines is replaced by the route. Elsewhere (admin, console)
    lines pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        path = getattr(request, "path", None)
        if not isinstance(path, str) or not path.startswith(API_PREFIXES):
            return True
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            return False
        assert isinstance(request, HttpRequest)
        escaped = path.encode("unicode_escape").decode("ascii")
        if isinstance(record.args, tuple):
            record.args = tuple(
                route_label(request) if arg in (path, escaped) else arg for arg in record.args
            )
        return True
