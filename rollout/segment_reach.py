"""Reach per rung of every segment, recomputed when what it depends on changes.

It depends on the segments (a segmentation run) and on the ladders (a rung's requirements):
`segment_reach_refresh` runs at the end of every segmentation run, and a change to a flag's
rungs schedules it on the worker once the change commits (`segment_reach_refresh_on_commit`).
The console reads the stored figures: no page computes them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from rollout.engine.document import snapshot_from_document
from rollout.engine.reach import tally
from rollout.models import Environment
from rollout.snapshots.compile import compile_environment
from segments.selectors import profile_sample
from segments.services import segment_reach_record

logger = logging.getLogger(__name__)

# Enough for a segment of 5 % of clients to be counted on 500 of them (±2 points), few
# enough to take well under a second of a segmentation run.
REACH_SAMPLE = 10_000


@dataclass(frozen=True)
class ReachReport:
    sampled: int
    segments: int
    flags: int
    seconds: float

    def summary(self) -> str:
        return (
            f"reach of {self.flags} ladder flag(s) in {self.segments} segment(s) from "
            f"{self.sampled} client(s) in {self.seconds:.2f} s"
        )


def _capability_document() -> dict[str, Any] | None:
    """One snapshot document holding every ladder flag of every environment: ladders and the
    capability model are shared by all environments (only availability is not, and reach
    leaves it out)."""
    documents = [compile_environment(env) for env in Environment.objects.order_by("pk")]
    if not documents:
        return None
    flags: dict[str, Any] = {}
    for document in documents:
        for flag in document["flags"]:
            if flag.get("ladder"):
                flags.setdefault(flag["key"], flag)
    return {**documents[0], "flags": list(flags.values())}


def segment_reach_refresh() -> ReachReport:
    """Count, on a sample of the stored profiles, what each segment's clients can run."""
    started = time.perf_counter()
    document = _capability_document()
    if document is None or document.get("capabilityModel") is None:
        return ReachReport(0, 0, 0, time.perf_counter() - started)
    snapshot = snapshot_from_document(document)
    population = profile_sample(REACH_SAMPLE)
    reach = tally(snapshot, population)
    segments = segment_reach_record(
        {identity: counted.to_json() for identity, counted in reach.items()},
        sampled=len(population),
    )
    report = ReachReport(
        len(population), segments, len(document["flags"]), time.perf_counter() - started
    )
    logger.info("segment reach: %s", report.summary())
    return report


class _ScheduledRefresh:
    """The on-commit callback of one transaction (many rungs saved, one refresh)."""

    done = False

    def __call__(self) -> None:
        from rollout.tasks import refresh_segment_reach  # tasks import this module

        self.done = True
        refresh_segment_reach.delay()


def segment_reach_refresh_on_commit() -> None:
    """Refresh reach on the worker once the current transaction commits (once per
    transaction). Robust: a broker that cannot be reached costs the refresh (the next
    segmentation run makes it), never the change that asked for it."""
    connection = transaction.get_connection()
    for _, func, _ in connection.run_on_commit:
        if isinstance(func, _ScheduledRefresh) and not func.done:
            return
    transaction.on_commit(_ScheduledRefresh(), robust=True)
