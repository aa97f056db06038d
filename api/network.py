"""What probe.js times to measure the client's own network (docs/capability-signals.md,
"Measured network").

- GET /api/v1/network/ping: 204, nothing else. The round trip of a request that costs the
  service next to nothing: what a cloud rung's call pays before any inference.
- GET /api/v1/network/download?bytes=N: N incompressible bytes (1 KiB to 1 MiB), timed by the
  client for its downlink.

Both need a client key and are never cached. A download is bounded in size and, per key and
address, in rate (EDGEFLAGS_NETWORK_DOWNLOADS_PER_ADDRESS per second): a script holding the
public key cannot turn the service into a bandwidth amplifier. Over the limit the answer is a
429 with Retry-After, and probe.js reports no downlink rather than a wrong one.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from api.client import authenticate, json_api
from api.http import ApiError
from api.rate_limits import TokenBuckets, client_address

MIN_DOWNLOAD_BYTES = 1024
MAX_DOWNLOAD_BYTES = 1024 * 1024
# Random, so that no proxy or transfer encoding shrinks what is timed; drawn once a process.
_PAYLOAD = os.urandom(MAX_DOWNLOAD_BYTES)
# Timing-Allow-Origin: a page on the customer's own site (another origin) may read the
# resource timing of these two, which probe.js measures with (otherwise zeroed).
_NOT_STORED = {
    "Cache-Control": "no-store",
    "Content-Encoding": "identity",
    "Timing-Allow-Origin": "*",
}
_downloads = TokenBuckets(
    settings.EDGEFLAGS_NETWORK_DOWNLOADS_PER_ADDRESS,
    burst=max(3.0, 2 * settings.EDGEFLAGS_NETWORK_DOWNLOADS_PER_ADDRESS),
)


@json_api("GET")
def ping_view(request: HttpRequest) -> HttpResponse:
    """GET /api/v1/network/ping (client key): 204, for round-trip timing."""
    authenticate(request)
    response = HttpResponse(status=204)
    response["Cache-Control"] = "no-store"
    response["Timing-Allow-Origin"] = "*"
    return response


def _size(raw: str | None) -> int:
    if raw is None or not raw.isdigit():
        raise ApiError(
            400,
            "INVALID_PROBE",
            f"bytes: required, a whole number from {MIN_DOWNLOAD_BYTES} to {MAX_DOWNLOAD_BYTES}",
        )
    size = int(raw)
    if not MIN_DOWNLOAD_BYTES <= size <= MAX_DOWNLOAD_BYTES:
        raise ApiError(
            400,
            "INVALID_PROBE",
            f"bytes: must be from {MIN_DOWNLOAD_BYTES} to {MAX_DOWNLOAD_BYTES}, got {size}",
        )
    return size


@json_api("GET")
def download_view(request: HttpRequest) -> HttpResponse:
    """GET /api/v1/network/download?bytes=N (client key): N random bytes, for downlink timing."""
    info = authenticate(request)
    size = _size(request.GET.get("bytes"))
    wait = _downloads.retry_after((info.key_id, client_address(request)))
    if wait:
        raise ApiError(
            429,
            "RATE_LIMITED",
            "bytes: too many downloads from your address "
            "(EDGEFLAGS_NETWORK_DOWNLOADS_PER_ADDRESS); the downlink is measured again later",
            headers={"Retry-After": str(wait)},
        )
    response = HttpResponse(_PAYLOAD[:size], content_type="application/octet-stream")
    for header, value in _NOT_STORED.items():
        response[header] = value
    return response
