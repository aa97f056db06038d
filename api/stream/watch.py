"""Keep the stream process' snapshot store current and tell the hub what changed.

Woken at once by the announcement every publish makes on Redis (`announce_version`), so a
change reaches the stream processes of every machine within a round trip; and every
EDGEFLAGS_STREAM_CHECK_INTERVAL_S by itself, which is all the embedded mode (no Redis) has,
and what catches an announcement lost while Redis was away. The store's checks do blocking
I/O (Redis, the database), so they run in a thread of their own, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import redis
import redis.asyncio
from django.conf import settings
from django.db import close_old_connections
from django.utils.dateparse import parse_datetime

from api.cors import refused_origin
from api.stream.hub import Change, Hub, Listener
from ops import metrics
from ops.outage import Outage
from rollout.snapshots.store import VERSIONS_CHANNEL, HeldSnapshot, KeyInfo, SnapshotStore

logger = logging.getLogger(__name__)

RESUBSCRIBE_AFTER_S = (0.5, 1.0, 2.0, 5.0)  # backoff while Redis is away


class Watcher:
    """Turns new snapshot versions into hub changes (only when an answer could differ)."""

    def __init__(self, hub: Hub, store: SnapshotStore, check_interval_s: float):
        self._hub = hub
        self._store = store
        self._check_interval_s = check_interval_s
        self._digests: dict[str, str] = {}
        self._keys: dict[str, KeyInfo] | None = None
        self._wake = asyncio.Event()
        # One thread for every check: one database connection, not one per pool thread.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stream-watch")
        self._check_outage = Outage(logger, "change stream: snapshot check")
        self._subscribe_outage = Outage(logger, "change stream: Redis subscription")

    async def run(self) -> None:
        """Check now, then whenever woken or the interval passes; forever."""
        tasks = [asyncio.create_task(self._checks())]
        if settings.REDIS_URL:
            tasks.append(asyncio.create_task(self._announcements()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _checks(self) -> None:
        while True:
            try:
                loop = asyncio.get_running_loop()
                changes = await loop.run_in_executor(self._thread, self._check)
            except Exception as exc:  # noqa: BLE001 - the store keeps what it holds; retried
                self._check_outage.failed(exc, consequence="streams keep the last change")
            else:
                self._check_outage.recovered()
                now = time.time()
                for environment, change in changes.items():
                    self._hub.update(environment, change)
                    if self._hub.ready.is_set():  # not the versions found at start
                        metrics.stream_change_lag.observe(max(0.0, now - change.published_at))
                self._close_revoked()
                self._hub.ready.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._check_interval_s)
            self._wake.clear()

    def _close_revoked(self) -> None:
        """When the keys were loaded again: end the streams of keys revoked or deleted since,
        or of origins their environment no longer allows (the client API refuses both within
        a check interval; an open stream must not outlive that)."""
        keys = self._store.held_keys()
        if keys is self._keys:
            return
        self._keys = keys
        valid = {info.key_id: info for info in keys.values() if not info.revoked}

        def refused(listener: Listener) -> bool:
            info = valid.get(listener.key_id)
            return info is None or refused_origin(listener.origin, info.allowed_origins) is not None

        self._hub.close_where(refused)

    def _check(self) -> dict[str, Change]:
        """In a thread: refresh the store; the environments whose answers changed."""
        close_old_connections()  # a connection the database closed meanwhile is reopened
        self._store.check_now()
        changes: dict[str, Change] = {}
        for environment, held in self._store.held_snapshots().items():
            if self._digests.get(environment) != held.content_digest:
                self._digests[environment] = held.content_digest
                published = _published_at(held)
                changes[environment] = Change(held.version, int(published), published)
        return changes

    async def _announcements(self) -> None:
        attempt = 0
        while True:
            client = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(VERSIONS_CHANNEL)
                    self._subscribe_outage.recovered()
                    attempt = 0
                    self._wake.set()  # announcements made while unsubscribed: check now
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._wake.set()
            except (redis.RedisError, OSError) as exc:
                self._subscribe_outage.failed(
                    exc, consequence="changes reach streams by the periodic check"
                )
            finally:
                await client.aclose()
            await asyncio.sleep(RESUBSCRIBE_AFTER_S[min(attempt, len(RESUBSCRIBE_AFTER_S) - 1)])
            attempt += 1


def _published_at(held: HeldSnapshot) -> float:
    published = parse_datetime(held.published_at)
    return published.timestamp() if published is not None else time.time()
