"""Caps on new guardrail identities: how many distinct clients may start counting per hour,
per source address and per API key.

Decision tokens prove that the server served a client its arm, but a script can still ask
for decisions under thousands of invented targeting keys and echo their tokens. Guardrails
need a sample, not every client, so each hour only the first
EDGEFLAGS_IDENTITY_CAP_PER_ADDRESS identities from one address, and the first
EDGEFLAGS_IDENTITY_CAP_PER_KEY of one key, are admitted; an admitted identity counts for the
rest of the hour. Events of the others are accepted and not counted (the client cannot tell
a cap from success, and must not retry). In Redis when REDIS_URL is set (shared by every
process), in Django's cache otherwise.
"""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.core.cache import cache
from redis.commands.core import Script

HOUR_S = 3600

# KEYS: the identity's admission this hour, the address' and the key's counters this hour.
# ARGV: their lifetime, the address cap, the key cap. 1 when admitted.
_ADMIT_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 1
end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2])
   or tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[3]) then
  return 0
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[1])
return 1
"""

_scripts: dict[str, Script] = {}


def _admit_script() -> Script:
    url = settings.REDIS_URL
    if url not in _scripts:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)
        _scripts[url] = client.register_script(_ADMIT_LUA)
    return _scripts[url]


def identity_admit(*, environment_id: int, key_id: int, address: str, client: str) -> bool:
    """Whether `client` (a keyed hash) counts this hour; admits it while under both caps.

    Raises redis.RedisError when Redis cannot answer (the buffer is then away too)."""
    hour = int(time.time()) // HOUR_S
    prefix = f"{settings.EDGEFLAGS_TELEMETRY_PREFIX}:identities:{hour}"
    keys = [
        f"{prefix}:client:{environment_id}:{client}",
        f"{prefix}:address:{address}",
        f"{prefix}:key:{key_id}",
    ]
    per_address = settings.EDGEFLAGS_IDENTITY_CAP_PER_ADDRESS
    per_key = settings.EDGEFLAGS_IDENTITY_CAP_PER_KEY
    if settings.REDIS_URL:
        return bool(_admit_script()(keys=keys, args=[HOUR_S, per_address, per_key]))
    return _admit_in_cache(keys, per_address, per_key)


def _admit_in_cache(keys: list[str], per_address: int, per_key: int) -> bool:
    # The embedded mode's cache has no scripts; a race can admit an identity or two over a
    # cap, which a sample does not mind.
    admitted, by_address, by_key = keys
    if cache.get(admitted):
        return True
    if cache.get(by_address, 0) >= per_address or cache.get(by_key, 0) >= per_key:
        return False
    cache.set(admitted, 1, HOUR_S)
    for counter in (by_address, by_key):
        if not cache.add(counter, 1, HOUR_S):
            cache.incr(counter)
    return True
