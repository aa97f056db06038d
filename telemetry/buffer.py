"""The durable buffer between event intake and the fold.

Redis mode (REDIS_URL set): one Lua script deduplicates the batch's event ids and appends the
new events as one list entry `<seq>|<json>`, so a batch is either wholly stored or not at all.
Embedded mode: SeenEvent rows and one TelemetryBatch row, written in one transaction.

An entry (Redis) or payload (TelemetryBatch) is
`{"env": <environment id>, "client": <client hash>, "received": <epoch s>, "events": [...]}`
with the events normalised by `telemetry.schema`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import redis
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from redis.commands.core import Script

from rollout.models import SeenEvent, TelemetryBatch
from telemetry.schema import EventBatch

# KEYS: events list, sequence counter, epoch, then one "seen" key per event.
# ARGV: seen TTL, a candidate epoch token, the entry's JSON head, then one JSON per event.
# Scripts run atomically, and Redis refuses a script under memory pressure only at its first
# write, so a batch is never half stored.
_APPEND_LUA = """
local new = {}
for i = 4, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    new[#new + 1] = ARGV[i]
  end
end
if #new > 0 then
  redis.call('SET', KEYS[3], ARGV[2], 'NX')
  local seq = redis.call('INCR', KEYS[2])
  redis.call('RPUSH', KEYS[1], seq .. '|' .. ARGV[3] .. table.concat(new, ',') .. ']}')
end
return #new
"""

# KEYS: events list, epoch. ARGV: the epoch the position belongs to, the folded position.
# Pops folded entries from the head; several folders may trim at once.
_TRIM_LUA = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
local position = tonumber(ARGV[2])
local popped = 0
while true do
  local head = redis.call('LINDEX', KEYS[1], 0)
  if not head then
    break
  end
  local bar = string.find(head, '|', 1, true)
  local seq = bar and tonumber(string.sub(head, 1, bar - 1))
  if seq and seq > position then
    break
  end
  redis.call('LPOP', KEYS[1])
  popped = popped + 1
end
return popped
"""


class BufferUnavailable(Exception):
    """The buffer could not store a batch; nothing of it was acknowledged."""


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class RedisChunk:
    """Entries at the head of the Redis buffer: (seq, entry JSON), oldest first."""

    epoch: str
    entries: list[tuple[int, bytes]]


def redis_mode() -> bool:
    """Whether the buffer lives in Redis (REDIS_URL set) rather than in the database."""
    return bool(settings.REDIS_URL)


def _key(name: str) -> str:
    return f"{settings.EDGEFLAGS_TELEMETRY_PREFIX}:{name}"


_clients: dict[str, tuple[redis.Redis, Script, Script]] = {}


def _redis() -> tuple[redis.Redis, Script, Script]:
    """This process' connection pool for the configured Redis, with the two scripts."""
    url = settings.REDIS_URL
    if url not in _clients:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)
        _clients[url] = (
            client,
            client.register_script(_APPEND_LUA),
            client.register_script(_TRIM_LUA),
        )
    return _clients[url]


def _entry_head(environment_id: int, client: str, received_at: float) -> bytes:
    head = orjson.dumps({"env": environment_id, "client": client, "received": received_at})
    return head[:-1] + b',"events":['


def telemetry_append(
    *, environment_id: int, client: str, batch: EventBatch, received_at: float
) -> AppendOutcome:
    """Store a validated batch durably; events whose id was accepted before are dropped.

    Raises BufferUnavailable when Redis or the database cannot take it.
    """
    if not batch.events:
        return AppendOutcome(0, 0)
    if redis_mode():
        accepted = _append_redis(environment_id, client, batch, received_at)
    else:
        accepted = _append_database(environment_id, client, batch, received_at)
    return AppendOutcome(accepted, len(batch.events) - accepted)


def _append_redis(environment_id: int, client: str, batch: EventBatch, received_at: float) -> int:
    seen = [_key(f"seen:{environment_id}:{event_id}") for event_id in batch.ids]
    keys = [_key("events"), _key("events:seq"), _key("events:epoch"), *seen]
    head = _entry_head(environment_id, client, received_at)
    args: list[Any] = [settings.EDGEFLAGS_EVENT_DEDUPE_S, os.urandom(8).hex(), head]
    args.extend(orjson.dumps(event) for event in batch.events)
    try:
        _, append, _ = _redis()
        return int(append(keys=keys, args=args))
    except redis.RedisError as exc:
        raise BufferUnavailable(f"Redis: {type(exc).__name__}: {exc}") from exc


def _append_database(
    environment_id: int, client: str, batch: EventBatch, received_at: float
) -> int:
    try:
        try:
            with transaction.atomic():
                return _insert_batch(environment_id, client, batch, received_at)
        except IntegrityError:
            # A concurrent request inserted some of these ids between our read and our
            # insert; once more, and they are seen as duplicates.
            with transaction.atomic():
                return _insert_batch(environment_id, client, batch, received_at)
    except DatabaseError as exc:
        raise BufferUnavailable(f"database: {type(exc).__name__}: {exc}") from exc


def _insert_batch(environment_id: int, client: str, batch: EventBatch, received_at: float) -> int:
    taken = set(
        SeenEvent.objects.filter(
            environment_id=environment_id, event_id__in=set(batch.ids)
        ).values_list("event_id", flat=True)
    )
    new_ids: list[str] = []
    events: list[dict[str, Any]] = []
    for event_id, event in zip(batch.ids, batch.events, strict=True):
        if event_id not in taken:
            taken.add(event_id)
            new_ids.append(event_id)
            events.append(event)
    if not events:
        return 0
    received = datetime.fromtimestamp(received_at, tz=UTC)
    SeenEvent.objects.bulk_create(
        SeenEvent(environment_id=environment_id, event_id=event_id, seen_at=received)
        for event_id in new_ids
    )
    TelemetryBatch.objects.create(
        environment_id=environment_id,
        received_at=received,
        payload={
            "env": environment_id,
            "client": client,
            "received": received_at,
            "events": events,
        },
    )
    return len(events)


def redis_peek(limit: int) -> RedisChunk:
    """The oldest `limit` entries of the Redis buffer, left in place (the fold trims later)."""
    client, _, _ = _redis()
    with client.pipeline(transaction=True) as pipe:
        pipe.get(_key("events:epoch"))
        pipe.lrange(_key("events"), 0, limit - 1)
        epoch, raw_entries = pipe.execute()
    entries: list[tuple[int, bytes]] = []
    for raw in raw_entries:
        seq, _, body = raw.partition(b"|")
        entries.append((int(seq) if seq.isdigit() else 0, body))
    return RedisChunk(epoch.decode() if epoch else "", entries)


def redis_trim(epoch: str, position: int) -> int:
    """Drop the head entries already folded (seq ≤ `position` of `epoch`); how many went."""
    _, _, trim = _redis()
    return int(trim(keys=[_key("events"), _key("events:epoch")], args=[epoch, position]))


def redis_cursor_name(epoch: str) -> str:
    """The TelemetryCursor row of this installation's Redis buffer in `epoch`.

    The epoch is created with the first entry after Redis lost its data, so a sequence that
    starts again from 1 gets a fresh cursor instead of being skipped as already folded.
    """
    prefix = hashlib.blake2b(settings.EDGEFLAGS_TELEMETRY_PREFIX.encode(), digest_size=6)
    return f"redis:{prefix.hexdigest()}:{epoch[:16]}"


def buffered_count() -> int:
    """Batches waiting in the buffer (for health checks and tests)."""
    if redis_mode():
        client, _, _ = _redis()
        return int(client.llen(_key("events")))
    return TelemetryBatch.objects.count()
