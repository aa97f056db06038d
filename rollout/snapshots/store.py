"""The in-memory snapshot of every environment, held by each API process.

The evaluation hot path reads only what is held here. At most once per check interval a
request pays for one cheap version check (a Redis HGETALL when Redis is configured, else one
indexed query); only when a newer version exists are the new documents and the API keys
loaded. When Redis or the database is away the process keeps serving what it holds.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Max
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ops import metrics
from ops.outage import Outage
from rollout.engine.document import snapshot_from_document
from rollout.engine.types import Snapshot
from rollout.models import ApiKey, SnapshotVersion

logger = logging.getLogger(__name__)

# Redis hash (environment key -> latest version) and channel, under the installation's prefix
# so that several installations can share one Redis.
VERSIONS_KEY = f"{settings.EDGEFLAGS_CACHE_PREFIX}:snapshot-versions"
VERSIONS_CHANNEL = f"{settings.EDGEFLAGS_CACHE_PREFIX}:snapshot-published"
DB_CHECK_INTERVAL_S = 5.0
# A request that names a version newer than the one held (a refetch triggered by the change
# stream) makes the process check at once; at most this often, whatever clients claim.
FORCED_CHECK_MIN_INTERVAL_S = 0.05
FORCED_CHECK_WAIT_S = 1.0


@dataclass(frozen=True, slots=True)
class HeldSnapshot:
    """One environment's compiled snapshot plus what the snapshot endpoint serves."""

    environment: str
    environment_id: int  # what profiles and telemetry are stored under: no query to find it
    version: int
    snapshot: Snapshot
    document_bytes: bytes
    etag: str
    # A digest of what decisions depend on (the document less its version and publish time):
    # a publish that changes nothing a client could see (a new API key) leaves it as it was,
    # so the change stream (api/stream) notifies clients only of real changes.
    content_digest: str = ""
    published_at: str = ""  # ISO 8601, from the document


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the hot path needs to know about a presented API key, and about its environment
    (held here, with the keys, so that decision tokens and signed identities cost no query;
    the identity secret never goes into the downloadable snapshot document)."""

    key_id: int
    environment: str
    scope: str
    revoked: bool
    environment_id: int
    identity_secret: str
    require_signed_identities: bool
    allowed_origins: frozenset[str] = frozenset()  # browser origins (empty: any)


def hash_api_key(raw_key: str) -> str:
    """SHA-256 of a key: keys are long random tokens, so a fast unsalted hash is enough."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


@dataclass
class _State:
    snapshots: dict[str, HeldSnapshot] = field(default_factory=dict)
    keys: dict[str, KeyInfo] = field(default_factory=dict)


class SnapshotStore:
    """Per-process holder of snapshots and API keys, refreshed by version checks."""

    def __init__(self, check_interval_s: float, clock: Callable[[], float] = time.monotonic):
        self._check_interval_s = check_interval_s
        self._clock = clock
        self._state = _State()
        self._loaded = False
        self._next_check = 0.0
        self._lock = threading.Lock()
        self._key_uses: dict[int, float] = {}
        self._next_key_flush = 0.0
        self._next_db_check = 0.0
        self._next_forced_check = 0.0
        # Each logged once per outage: these run on every check interval of every process.
        self._refresh_outage = Outage(logger, "snapshot refresh")
        self._redis_check_outage = Outage(logger, "snapshot version check via Redis")
        self._key_use_outage = Outage(logger, "recording API key use")

    # --- hot path ----------------------------------------------------------------------
    def snapshot(self, environment: str) -> HeldSnapshot | None:
        """The held snapshot of `environment`, checking for a newer one when due."""
        self._refresh_if_due()
        return self._state.snapshots.get(environment)

    def snapshot_at_least(self, environment: str, version: int) -> HeldSnapshot | None:
        """The held snapshot of `environment`, after checking at once for a newer one when
        the held version is older than `version` (which a client claims: the check is
        bounded to one per FORCED_CHECK_MIN_INTERVAL_S per process)."""
        held = self.snapshot(environment)
        if held is not None and held.version >= version:
            return held
        if self._clock() >= self._next_forced_check and self._lock.acquire(
            timeout=FORCED_CHECK_WAIT_S
        ):
            try:
                held = self._state.snapshots.get(environment)
                if (held is None or held.version < version) and (
                    self._clock() >= self._next_forced_check
                ):
                    self._next_forced_check = self._clock() + FORCED_CHECK_MIN_INTERVAL_S
                    self._next_check = self._clock() + self._check_interval_s
                    self._refresh()
            finally:
                self._lock.release()
        return self._state.snapshots.get(environment)

    def key(self, raw_key: str) -> KeyInfo | None:
        """The key's record when `raw_key` is a known key (revoked keys included)."""
        self._refresh_if_due()
        return self.held_key(raw_key)

    def held_key(self, raw_key: str) -> KeyInfo | None:
        """`key` without the version check: no I/O, for callers on an event loop (the
        change stream, whose watcher keeps the store current)."""
        info = self._state.keys.get(hash_api_key(raw_key))
        if info is not None and not info.revoked:
            self._key_uses[info.key_id] = time.time()
        return info

    def held_keys(self) -> dict[str, KeyInfo]:
        """Every key held (by hash), without a version check (no I/O). A new dict whenever
        the keys were loaded again, so callers can tell a reload by identity."""
        return self._state.keys

    def held_snapshots(self) -> dict[str, HeldSnapshot]:
        """Every environment's held snapshot, without a version check (no I/O)."""
        return self._state.snapshots

    def check_now(self) -> None:
        """Check for newer versions now, whatever the interval (the change stream's watcher,
        woken by an announcement or its poll)."""
        with self._lock:
            self._next_check = self._clock() + self._check_interval_s
            self._refresh()
            self._flush_key_uses()

    # --- refresh -----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything held; the next request loads afresh (tests, admin actions)."""
        with self._lock:
            self._state = _State()
            self._loaded = False
            self._next_check = 0.0

    def _refresh_if_due(self) -> None:
        # Until the first load has finished every request waits for it (below); after that
        # requests between checks take this fast path.
        if self._loaded and self._clock() < self._next_check:
            return
        # One request refreshes; the others keep serving what is held meanwhile.
        if not self._lock.acquire(blocking=not self._loaded):
            return
        try:
            if self._loaded and self._clock() < self._next_check:
                return
            self._next_check = self._clock() + self._check_interval_s
            self._refresh()
            self._flush_key_uses()
        finally:
            self._lock.release()

    def _refresh(self) -> None:
        try:
            latest = self._latest_versions()
            held = {env: s.version for env, s in self._state.snapshots.items()}
            if not self._loaded or any(held.get(env, 0) < v for env, v in latest.items()):
                self._load(latest)
        except (DatabaseError, redis.RedisError, OSError) as exc:
            # Serve what is held: a dependency outage must not stop evaluation.
            self._refresh_outage.failed(exc, consequence="serving the versions held")
        else:
            self._refresh_outage.recovered()
            metrics.snapshot_checked.set(time.time())

    def _latest_versions(self) -> dict[str, int]:
        # Redis answers most checks; the database is asked every few seconds anyway, because
        # Redis keeps nothing on disk and an announcement made while it was away is lost.
        db_check_due = self._clock() >= self._next_db_check
        if settings.REDIS_URL and self._loaded and not db_check_due:
            try:
                raw = _redis().hgetall(VERSIONS_KEY)
            except redis.RedisError as exc:
                self._redis_check_outage.failed(exc, consequence="checking in the database")
            else:
                self._redis_check_outage.recovered()
                return {_text(k): int(v) for k, v in raw.items()}
        self._next_db_check = self._clock() + DB_CHECK_INTERVAL_S
        rows = SnapshotVersion.objects.values("environment__key").annotate(latest=Max("version"))
        return {row["environment__key"]: row["latest"] for row in rows}

    def _load(self, latest: dict[str, int]) -> None:
        snapshots = dict(self._state.snapshots)
        for env, version in latest.items():
            if env in snapshots and snapshots[env].version >= version:
                continue
            row = (
                SnapshotVersion.objects.filter(environment__key=env)
                .order_by("-version")
                .values("version", "document", "etag", "environment_id")
                .first()
            )
            if row is None:
                continue
            snapshots[env] = _hold(
                env, row["environment_id"], row["version"], row["document"], row["etag"]
            )
            _measure_held(env, row["version"], row["document"])
        keys = {
            k.key_hash: KeyInfo(
                k.pk,
                k.environment.key,
                k.scope,
                k.revoked_at is not None,
                k.environment_id,
                k.environment.identity_secret,
                k.environment.require_signed_identities,
                k.environment.origin_set,
            )
            for k in ApiKey.objects.select_related("environment")
        }
        self._state = _State(snapshots=snapshots, keys=keys)
        self._loaded = True

    def _flush_key_uses(self) -> None:
        # last_used_at is informative: written at most once a minute per process, off the
        # per-request path (only the request that performs the version check pays for it).
        if self._clock() < self._next_key_flush or not self._key_uses:
            return
        self._next_key_flush = self._clock() + 60
        uses, self._key_uses = self._key_uses, {}
        try:
            ApiKey.objects.filter(pk__in=list(uses)).update(last_used_at=timezone.now())
        except DatabaseError as exc:
            self._key_use_outage.failed(exc, consequence="last_used_at not updated")
        else:
            self._key_use_outage.recovered()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _hold(
    environment: str, environment_id: int, version: int, document: dict[str, Any], etag: str
) -> HeldSnapshot:
    return HeldSnapshot(
        environment=environment,
        environment_id=environment_id,
        version=version,
        snapshot=snapshot_from_document(document),
        document_bytes=orjson.dumps(document),
        etag=etag,
        content_digest=content_digest(document),
        published_at=str(document.get("publishedAt", "")),
    )


def content_digest(document: dict[str, Any]) -> str:
    """What decisions depend on: the document less its version and publish time."""
    content = {k: v for k, v in document.items() if k not in ("version", "publishedAt")}
    return hashlib.blake2b(
        orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=12
    ).hexdigest()


def _measure_held(environment: str, version: int, document: dict[str, Any]) -> None:
    metrics.snapshot_version.labels(environment).set(version)
    published = parse_datetime(str(document.get("publishedAt", "")))
    if published is not None:
        metrics.snapshot_published.labels(environment).set(published.timestamp())


_redis_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _redis_client  # one connection pool per process
    if _redis_client is None:
        _redis_client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5
        )
    return _redis_client


_announce_outage = Outage(logger, "announcing snapshot versions in Redis")


def announce_version(environment: str, version: int) -> None:
    """Tell every process (and anything subscribed) that `environment` has a new version."""
    if not settings.REDIS_URL:
        return  # embedded mode: processes poll the database instead
    try:
        client = _redis()
        client.hset(VERSIONS_KEY, environment, version)
        client.publish(VERSIONS_CHANNEL, f"{environment}:{version}")
    except redis.RedisError as exc:
        # Processes fall back to the database check when Redis is away, so this is not fatal.
        _announce_outage.failed(
            exc, consequence=f"{environment} v{version} reaches processes by their database check"
        )
    else:
        _announce_outage.recovered()


store = SnapshotStore(check_interval_s=settings.EDGEFLAGS_SNAPSHOT_CHECK_INTERVAL_S)
