"""Writes of the capability_probe app: take in probes, erase a client, purge old data."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from capability_probe.models import (
    BOOKKEEPING_COLUMNS,
    ClientProfile,
    ProbeReceipt,
    columns_to_attributes,
)
from capability_probe.schema import GRANTED, Probe, ProbeInvalid, probe_fingerprint
from capability_probe.vocabulary import TEXT_COLUMNS

HISTORY_LENGTH = 5
# How long "this client has no profile" is remembered (its first probe overwrites it).
NO_PROFILE_TTL_S = 300


def client_hash(client_id: str) -> str:
    """HMAC-SHA256 of a client id under the server's profile secret: the only key stored."""
    secret = settings.EDGEFLAGS_PROFILE_SECRET.encode()
    # surrogatepass: a lone surrogate (valid Python text, refused by probes) hashes, not 500s.
    message = client_id.encode("utf-8", "surrogatepass")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _cache_key(environment_id: int, hashed: str) -> str:
    return f"profile:{environment_id}:{hashed}"


@dataclass(frozen=True)
class ProbeOutcome:
    """What intake did with a probe, and the attributes of that probe (never a stored row)."""

    attributes: dict[str, Any]
    stored: bool
    duplicate: bool


def probe_record(
    *,
    probe: Probe,
    environment_id: int,
    segment_identity: int | None = None,
    settled_rungs: dict[str, Any] | None = None,
    store: bool = True,
) -> ProbeOutcome:
    """Store a probe as the client's latest profile in one environment.

    The same client retrying the same probe changes nothing. The answer carries only what
    this probe said, so a replayed probe id cannot read anyone's stored profile. `store=False`
    (consent not granted, or an identity the environment does not trust) answers without keeping
    anything. A value the database refuses is a ProbeInvalid and leaves nothing written.
    """
    attributes = columns_to_attributes(probe.profile)
    if probe.consent != GRANTED or not store:
        return ProbeOutcome(attributes=attributes, stored=False, duplicate=False)
    hashed = client_hash(probe.client_id)
    now = timezone.now()
    for attempt in range(2):
        try:
            with transaction.atomic():
                _, created = ProbeReceipt.objects.get_or_create(
                    environment_id=environment_id,
                    client_hash=hashed,
                    probe_id=probe.probe_id,
                    fingerprint=probe_fingerprint(probe),
                    defaults={"received_at": now},
                )
                if not created:
                    return ProbeOutcome(attributes=attributes, stored=False, duplicate=True)
                profile = _profile_write(
                    probe=probe,
                    environment_id=environment_id,
                    hashed=hashed,
                    attributes=attributes,
                    segment_identity=segment_identity,
                    settled_rungs=settled_rungs,
                    now=now,
                )
            break
        except IntegrityError:
            # Two first probes of one client raced to create its profile: the second
            # attempt finds the row and updates it.
            if attempt:
                raise
        except DataError as exc:
            # The schema refuses what PostgreSQL is known to refuse; this is the backstop.
            raise ProbeInvalid("probe", "a value was refused by the database") from exc
    _cache_set(environment_id, hashed, profile.attributes())
    return ProbeOutcome(attributes=attributes, stored=True, duplicate=False)


def _profile_write(
    *,
    probe: Probe,
    environment_id: int,
    hashed: str,
    attributes: dict[str, Any],
    segment_identity: int | None,
    settled_rungs: dict[str, Any] | None,
    now: datetime,
) -> ClientProfile:
    profile = (
        ClientProfile.objects.select_for_update()
        .filter(environment_id=environment_id, client_hash=hashed)
        .first()
    )
    entry = {"receivedAt": now.isoformat(), **attributes, **probe.runtime}
    if profile is None:
        profile = ClientProfile(
            environment_id=environment_id, client_hash=hashed, received_at=now, history=[entry]
        )
    else:
        profile.probe_count += 1
        profile.history = [entry, *profile.history][:HISTORY_LENGTH]
        for column in _PROFILE_COLUMNS:
            setattr(profile, column, _EMPTY.get(column))
    for column, value in probe.profile.items():
        setattr(profile, column, value)
    profile.received_at = now
    profile.runtime = probe.runtime
    profile.segment_identity = segment_identity
    if settled_rungs is not None:
        profile.settled_rungs = settled_rungs
    profile.save()
    return profile


_PROFILE_COLUMNS = [
    f.name
    for f in ClientProfile._meta.get_fields()
    if f.concrete and f.name not in BOOKKEEPING_COLUMNS
]
# A new probe replaces the old one whole: a signal it no longer reports is missing, not stale.
_EMPTY: dict[str, Any] = {
    f.name: "" for f in ClientProfile._meta.get_fields() if f.concrete and not f.null
}


def _cache_set(environment_id: int, hashed: str, attributes: dict[str, Any]) -> None:
    timeout = settings.EDGEFLAGS_PROBE_RETENTION_DAYS * 86400
    try:
        cache.set(_cache_key(environment_id, hashed), attributes, timeout=timeout)
    except Exception:  # noqa: BLE001 - the cache is an accelerator; the database has the data
        return


def profile_attributes(*, environment_id: int, client_id: str) -> dict[str, Any] | None:
    """The client's stored profile in one environment as context attributes.

    The cache first, then one query on a miss (a miss is cached too, so repeated misses
    cost no query).
    """
    hashed = client_hash(client_id)
    key = _cache_key(environment_id, hashed)
    try:
        cached = cache.get(key)
    except Exception:  # noqa: BLE001 - Redis away: fall through to the database
        cached = None
    if cached is not None:
        return dict(cached) or None  # {} marks "no profile"
    profile = ClientProfile.objects.filter(
        environment_id=environment_id, client_hash=hashed
    ).first()
    if profile is None:
        with contextlib.suppress(Exception):
            cache.set(key, {}, timeout=NO_PROFILE_TTL_S)
        return None
    attributes = profile.attributes()
    _cache_set(environment_id, hashed, attributes)
    return attributes


@transaction.atomic
def client_erase(*, environment_id: int, client_id: str) -> bool:
    """Erase what one environment stored about a client; True when there was something.

    Unscoped rows of the client (stored before profiles were scoped) go too: no environment
    owns them, and the person asked for erasure.
    """
    hashed = client_hash(client_id)
    profiles = ClientProfile.objects.filter(client_hash=hashed).filter(
        Q(environment_id=environment_id) | Q(environment_id__isnull=True)
    )
    return _erase(hashed, profiles, ProbeReceipt.objects.filter(environment_id=environment_id))


@transaction.atomic
def client_erase_everywhere(*, client_id: str) -> bool:
    """Erase what every environment stored about a client (the operator's command)."""
    hashed = client_hash(client_id)
    return _erase(
        hashed, ClientProfile.objects.filter(client_hash=hashed), ProbeReceipt.objects.all()
    )


def _erase(
    hashed: str, profiles: QuerySet[ClientProfile], receipts: QuerySet[ProbeReceipt]
) -> bool:
    receipts = receipts.filter(client_hash=hashed)
    environments = set(profiles.values_list("environment_id", flat=True))
    environments |= set(receipts.values_list("environment_id", flat=True))
    deleted, _ = profiles.delete()
    deleted_receipts, _ = receipts.delete()
    try:
        cache.delete_many([_cache_key(e, hashed) for e in environments if e is not None])
    except Exception as exc:
        # A cached copy would be served again once the cache is back: the erasure is not
        # done, so nothing of it is (the caller's transaction rolls the deletes back).
        raise ErasureIncomplete("cache", f"unreachable ({type(exc).__name__})") from exc
    return bool(deleted or deleted_receipts)


class ErasureIncomplete(Exception):
    """A store holding the client's data could not be reached; nothing was erased."""

    def __init__(self, store: str, problem: str):
        super().__init__(f"{store}: {problem}")
        self.store = store


@transaction.atomic
def probes_purge_expired(*, retention_days: int | None = None) -> dict[str, int]:
    """Delete profiles and probe receipts older than the retention (default from settings)."""
    days = retention_days if retention_days is not None else settings.EDGEFLAGS_PROBE_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    profiles, _ = ClientProfile.objects.filter(received_at__lt=cutoff).delete()
    receipts, _ = ProbeReceipt.objects.filter(received_at__lt=cutoff).delete()
    return {"profiles": profiles, "receipts": receipts}


def profiles_bulk_load(
    *, environment_id: int | None, client_hashes: list[str], columns: dict[str, list[Any]]
) -> int:
    """Insert many new profiles at once (synthetic populations, migrations): COPY on PostgreSQL.

    `columns` maps profile column names to equal-length lists (None for missing); the rows
    belong to `environment_id` (None: to no environment, fitted on but read by no key).
    """
    now = timezone.now()
    names = ["environment_id", "client_hash", "received_at", "probe_count", "runtime"]
    names += ["history", "settled_rungs"]
    names += TEXT_COLUMNS
    data_columns = [c for c in columns if c not in names]
    count = len(client_hashes)

    def row(i: int) -> tuple[Any, ...]:
        fixed = [environment_id, client_hashes[i], now, 1, "{}", "[]", "{}"]
        texts = [(columns[c][i] or "") if c in columns else "" for c in names[len(fixed) :]]
        return (*fixed, *texts, *(columns[c][i] for c in data_columns))

    fields = names + data_columns
    table = ClientProfile._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            copy_sql = f"COPY {table} ({', '.join(fields)}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:  # psycopg 3: rows streamed, no SQL per row
                for i in range(count):
                    copy.write_row(row(i))
        return count
    batch = []
    for i in range(count):
        values = dict(zip(fields, row(i), strict=True))
        values["runtime"], values["history"], values["settled_rungs"] = {}, [], {}
        batch.append(ClientProfile(**values))
        if len(batch) == 5000:
            ClientProfile.objects.bulk_create(batch)
            batch = []
    ClientProfile.objects.bulk_create(batch)
    return count
