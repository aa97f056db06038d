"""Writes of the capability_probe app: take in probes, erase a client, purge old data."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from capability_probe.models import ClientProfile, ProbeReceipt, columns_to_attributes
from capability_probe.schema import Probe

HISTORY_LENGTH = 5
# How long "this client has no profile" is remembered (its first probe overwrites it).
NO_PROFILE_TTL_S = 300


def client_hash(client_id: str) -> str:
    """HMAC-SHA256 of a client id under the server's profile secret: the only key stored."""
    secret = settings.EDGEFLAGS_PROFILE_SECRET.encode()
    return hmac.new(secret, client_id.encode(), hashlib.sha256).hexdigest()


def _cache_key(hashed: str) -> str:
    return f"profile:{hashed}"


@dataclass(frozen=True)
class ProbeOutcome:
    """What intake did with a probe, and the client's profile attributes afterwards."""

    attributes: dict[str, Any]
    stored: bool
    duplicate: bool


def probe_record(*, probe: Probe, segment_key: str = "") -> ProbeOutcome:
    """Store a probe as the client's latest profile; a repeated probe id changes nothing."""
    attributes = columns_to_attributes(probe.profile)
    if not probe.consent:
        # Without consent the probe serves this one answer and is not kept.
        return ProbeOutcome(attributes=attributes, stored=False, duplicate=False)
    hashed = client_hash(probe.client_id)
    now = timezone.now()
    try:
        with transaction.atomic():
            ProbeReceipt.objects.create(
                probe_id=probe.probe_id, client_hash=hashed, received_at=now
            )
            profile = ClientProfile.objects.select_for_update().filter(client_hash=hashed).first()
            entry = {"receivedAt": now.isoformat(), **attributes, **probe.runtime}
            if profile is None:
                profile = ClientProfile(client_hash=hashed, received_at=now, history=[entry])
            else:
                profile.probe_count += 1
                profile.history = [entry, *profile.history][:HISTORY_LENGTH]
                for column in _PROFILE_COLUMNS:
                    setattr(profile, column, _EMPTY.get(column))
            for column, value in probe.profile.items():
                setattr(profile, column, value)
            profile.received_at = now
            profile.runtime = probe.runtime
            profile.segment_key = segment_key
            profile.save()
    except IntegrityError:
        existing = profile_attributes(client_id=probe.client_id)
        return ProbeOutcome(attributes=existing or attributes, stored=False, duplicate=True)
    _cache_set(hashed, profile.attributes())
    return ProbeOutcome(attributes=profile.attributes(), stored=True, duplicate=False)


_PROFILE_COLUMNS = [
    f.name
    for f in ClientProfile._meta.get_fields()
    if f.concrete
    and f.name
    not in {
        "id",
        "client_hash",
        "received_at",
        "probe_count",
        "runtime",
        "segment_key",
        "history",
    }
]
# A new probe replaces the old one whole: a signal it no longer reports is missing, not stale.
_EMPTY: dict[str, Any] = {
    f.name: "" for f in ClientProfile._meta.get_fields() if f.concrete and not f.null
}


def _cache_set(hashed: str, attributes: dict[str, Any]) -> None:
    timeout = settings.EDGEFLAGS_PROBE_RETENTION_DAYS * 86400
    try:
        cache.set(_cache_key(hashed), attributes, timeout=timeout)
    except Exception:  # noqa: BLE001 - the cache is an accelerator; the database has the data
        return


def profile_attributes(*, client_id: str) -> dict[str, Any] | None:
    """The client's stored profile as context attributes: the cache first, then one query."""
    hashed = client_hash(client_id)
    try:
        cached = cache.get(_cache_key(hashed))
    except Exception:  # noqa: BLE001 - Redis away: fall through to the database
        cached = None
    if cached is not None:
        return dict(cached) or None  # {} marks "no profile", cached so misses cost no query
    profile = ClientProfile.objects.filter(client_hash=hashed).first()
    if profile is None:
        with contextlib.suppress(Exception):
            cache.set(_cache_key(hashed), {}, timeout=NO_PROFILE_TTL_S)
        return None
    attributes = profile.attributes()
    _cache_set(hashed, attributes)
    return attributes


@transaction.atomic
def client_erase(*, client_id: str) -> bool:
    """Erase everything stored about one client; True when there was something."""
    hashed = client_hash(client_id)
    deleted, _ = ClientProfile.objects.filter(client_hash=hashed).delete()
    receipts, _ = ProbeReceipt.objects.filter(client_hash=hashed).delete()
    # The cache entry expires with the retention anyway: a cache outage must not block erasure.
    with contextlib.suppress(Exception):
        cache.delete(_cache_key(hashed))
    return bool(deleted or receipts)


@transaction.atomic
def probes_purge_expired(*, retention_days: int | None = None) -> dict[str, int]:
    """Delete profiles and probe receipts older than the retention (default from settings)."""
    days = retention_days if retention_days is not None else settings.EDGEFLAGS_PROBE_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    profiles, _ = ClientProfile.objects.filter(received_at__lt=cutoff).delete()
    receipts, _ = ProbeReceipt.objects.filter(received_at__lt=cutoff).delete()
    return {"profiles": profiles, "receipts": receipts}


def profiles_bulk_load(*, client_hashes: list[str], columns: dict[str, list[Any]]) -> int:
    """Insert many new profiles at once (synthetic populations, migrations): COPY on PostgreSQL.

    `columns` maps profile column names to equal-length lists (None for missing).
    """
    now = timezone.now()
    names = ["client_hash", "received_at", "probe_count", "runtime", "history", "segment_key"]
    names += [
        "benchmark_workload",
        "effective_type",
        "os",
        "os_version",
        "browser",
        "browser_version",
        "app_version",
    ]
    data_columns = [c for c in columns if c not in names]
    count = len(client_hashes)

    def row(i: int) -> tuple[Any, ...]:
        fixed = [client_hashes[i], now, 1, "{}", "[]", ""]
        texts = [(columns[c][i] or "") if c in columns else "" for c in names[6:]]
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
        values["runtime"], values["history"] = {}, []
        batch.append(ClientProfile(**values))
        if len(batch) == 5000:
            ClientProfile.objects.bulk_create(batch)
            batch = []
    ClientProfile.objects.bulk_create(batch)
    return count
