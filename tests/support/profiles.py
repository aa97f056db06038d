"""Stored profiles as people read them: by their segment's current key (a profile holds the
segment's identity)."""

from __future__ import annotations

from django.db.models import QuerySet

from capability_probe.models import ClientProfile
from segments.selectors import profiles_with_segment_keys


def profiles_keyed() -> QuerySet[ClientProfile]:
    """Every profile, annotated with its segment's current key as `segment_key`."""
    return profiles_with_segment_keys(ClientProfile.objects.all())


def profiles_of(key: str) -> QuerySet[ClientProfile]:
    """The profiles whose segment has the key `key` now."""
    return profiles_keyed().filter(segment_key=key)
