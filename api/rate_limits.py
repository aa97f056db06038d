"""Rate limits of the client API: per client, with abuse ceilings per address and per key.

A client key ships inside every installed app, so one key is a whole fleet: a limit per key at
the service's own capacity refuses legitimate load (measured: 20,627 of a 20-second run's
responses were 429 under the old 2,000 requests/s per key). What a limiter in the web process
can usefully stop is one runaway client — an app stuck in a retry loop, a script hammering
with one identity — so the tight limit is per client: (key, source address, targeting key).
The per-address and per-key limits are ceilings well above what a process serves (about
2,500–5,000 evaluate requests/s on 2 cores), so they refuse nothing a real fleet sends; they
only bound what one address or one key can do to a process. Volumetric attacks from many
addresses belong to the load balancer or WAF in front, which sees every process at once.

All buckets are per process and in memory: no Redis or database round trip on the hot path.
Refusals are counted and logged in aggregate, one line per interval, not one line each.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Hashable
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from ops import metrics

logger = logging.getLogger(__name__)

# Above this many tracked clients the buckets are dropped whole (fail open): a flood of new
# identities must not grow the process without bound.
MAX_TRACKED = 500_000


class TokenBuckets:
    """Token buckets by key, refilled at `rate` per second up to `burst`; idle ones forgotten."""

    def __init__(self, rate_per_s: float, burst: float | None = None):
        self.rate = rate_per_s
        self.burst = burst if burst is not None else max(2 * rate_per_s, 1.0)
        # A bucket untouched this long is full again: the same as no bucket.
        self._idle_after = self.burst / self.rate if self.rate > 0 else float("inf")
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at)
        self._next_sweep = 0.0
        self._sweep_lock = threading.Lock()

    def retry_after(self, key: Hashable, now: float | None = None) -> int:
        """0 when a request under `key` may go on (a token is taken); else whole seconds to wait."""
        now = time.monotonic() if now is None else now
        entry = self._buckets.get(key)
        if entry is None:
            tokens = self.burst
        else:
            tokens = min(self.burst, entry[0] + (now - entry[1]) * self.rate)
        if now >= self._next_sweep:
            self._sweep(now)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0
        self._buckets[key] = (tokens, now)
        return max(1, int((1.0 - tokens) / self.rate + 0.999))

    def waiting(self, key: Hashable, now: float | None = None) -> int:
        """As retry_after, without taking a token: 0 while `key` has one left."""
        now = time.monotonic() if now is None else now
        entry = self._buckets.get(key)
        if entry is None:
            return 0
        tokens = min(self.burst, entry[0] + (now - entry[1]) * self.rate)
        return 0 if tokens >= 1.0 else max(1, int((1.0 - tokens) / self.rate + 0.999))

    def __len__(self) -> int:
        return len(self._buckets)

    def _sweep(self, now: float) -> None:
        if not self._sweep_lock.acquire(blocking=False):
            return  # another thread is sweeping
        try:
            self._next_sweep = now + max(1.0, min(self._idle_after, 60.0))
            if len(self._buckets) > MAX_TRACKED:
                self._buckets.clear()
                return
            # list() copies in C under the GIL: other threads may insert meanwhile.
            for key, (_, at) in list(self._buckets.items()):
                if now - at >= self._idle_after:
                    self._buckets.pop(key, None)
        finally:
            self._sweep_lock.release()


class RefusalLog:
    """Counts refused requests by reason; logs at most one WARNING line per interval."""

    def __init__(self, interval_s: float):
        self.interval = interval_s
        self._counts: Counter[str] = Counter()
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def record(self, reason: str) -> None:
        """Count one refusal; write the summary line when the interval is over."""
        now = time.monotonic()
        with self._lock:
            self._counts[reason] += 1
            if now - self._since < self.interval:
                return
            counts, since = self._counts, self._since
            self._counts, self._since = Counter(), now
        total = sum(counts.values())
        detail = ", ".join(f"{reason}: {count}" for reason, count in counts.most_common())
        logger.warning(
            "rate limited %d client API request(s) in the last %.0f s (%s)",
            total,
            now - since,
            detail,
        )


def client_address(request: HttpRequest) -> str:
    """The caller's address: REMOTE_ADDR, or the X-Forwarded-For entry written by the
    outermost of EDGEFLAGS_NUM_PROXIES trusted proxies (entries to its left are the
    client's own claims)."""
    return address_through_proxies(
        str(request.META.get("HTTP_X_FORWARDED_FOR", "")), str(request.META.get("REMOTE_ADDR", ""))
    )


def address_through_proxies(forwarded_for: str, peer: str) -> str:
    """`client_address` from the X-Forwarded-For header and the peer address (any server)."""
    proxies: int = settings.EDGEFLAGS_NUM_PROXIES
    if proxies > 0:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return peer


class ClientRateLimits:
    """The three limits of the client API, checked in order of cost: key, address, client."""

    def __init__(
        self,
        *,
        per_key: float,
        per_address: float,
        per_client: float,
        log_s: float,
        unknown_keys_per_address: float = 1.0,
    ):
        self.per_key = TokenBuckets(per_key)
        self.per_address = TokenBuckets(per_address)
        self.per_client = TokenBuckets(per_client)
        # Unknown keys are guesses (or a mistyped key): an address that sends more than its
        # burst of them is refused outright, any key, until the bucket refills — so guessing
        # is held to this rate per address and process, and a hit cannot be told from a miss.
        self.unknown_keys = TokenBuckets(
            unknown_keys_per_address, burst=max(10 * unknown_keys_per_address, 1.0)
        )
        self.refusals = RefusalLog(log_s)

    def check_guessing(self, address: str, now: float | None = None) -> tuple[str, int] | None:
        """(reason, seconds to wait) while `address` has used up its unknown keys, or None."""
        wait = self.unknown_keys.waiting(address, now)
        return self._refused("unknown_keys", wait) if wait else None

    def unknown_key(self, address: str, now: float | None = None) -> None:
        """Count a request from `address` with a key that is no key of any environment."""
        self.unknown_keys.retry_after(address, now)

    def check_caller(
        self, key_id: int, address: str, now: float | None = None
    ) -> tuple[str, int] | None:
        """(what was exceeded, seconds to wait) for this key and address, or None."""
        wait = self.per_key.retry_after(key_id, now)
        if wait:
            return self._refused("key", wait)
        wait = self.per_address.retry_after((key_id, address), now)
        if wait:
            return self._refused("address", wait)
        return None

    def check_client(
        self, key_id: int, address: str, targeting_key: Any, now: float | None = None
    ) -> tuple[str, int] | None:
        """(what was exceeded, seconds to wait) for this client, or None; a request without a
        targeting key is limited by its address alone."""
        if not isinstance(targeting_key, str) or not targeting_key:
            return None
        wait = self.per_client.retry_after((key_id, address, targeting_key), now)
        if wait:
            return self._refused("client", wait)
        return None

    def _refused(self, what: str, wait: int) -> tuple[str, int]:
        self.refusals.record(what)
        metrics.rate_limited.labels(what).inc()
        return what, wait


def limits_from_settings() -> ClientRateLimits:
    """The limits as configured (EDGEFLAGS_RATE_LIMIT_*)."""
    return ClientRateLimits(
        per_key=settings.EDGEFLAGS_RATE_LIMIT_PER_KEY,
        per_address=settings.EDGEFLAGS_RATE_LIMIT_PER_ADDRESS,
        per_client=settings.EDGEFLAGS_RATE_LIMIT_PER_CLIENT,
        log_s=settings.EDGEFLAGS_RATE_LIMIT_LOG_S,
        unknown_keys_per_address=settings.EDGEFLAGS_RATE_LIMIT_UNKNOWN_KEYS_PER_ADDRESS,
    )
