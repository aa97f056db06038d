"""Reads of the rollout app."""

from __future__ import annotations

from django.db.models import QuerySet

from rollout.models import Flag


def flag_list() -> QuerySet[Flag]:
    """Every flag with its per-environment states (and their environments) prefetched."""
    return Flag.objects.prefetch_related("states__environment", "states__rules").order_by("key")
