"""Server-side exposure counts: one per decision that put a client in a rollout arm.

Counted in memory on the hot path (no I/O) and written to MetricBucket.exposures by a
daemon thread every EDGEFLAGS_EXPOSURE_FLUSH_S seconds and at exit. Exposures are logged
where the decision is made because clients that crash or go offline report less, which
would bias the arms (docs/guardrails.md, "Arms, units and what is measured").
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction

from ops.outage import Outage
from rollout.engine.types import Decision, Snapshot
from rollout.models import Environment
from telemetry.aggregates import bucket_add

logger = logging.getLogger(__name__)

# (environment key, flag, segment identity, arm, rung, model version, minute as epoch seconds)
ExposureKey = tuple[str, str, int, str, str, str, int]

MAX_PENDING_KEYS = 10_000


class ExposureCounter:
    """Per-process exposure counts, flushed into the aggregates by a background thread."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[ExposureKey, int] = {}
        self._flusher: threading.Thread | None = None
        self._outage = Outage(logger, "writing exposure counts")

    def count(
        self, environment: str, flag: str, segment: int, arm: str, rung: str = "", model: str = ""
    ) -> None:
        """One exposure of `environment`'s `flag` in (segment identity, arm), served `rung`
        running `model`, this minute."""
        key = (environment, flag, segment, arm, rung, model, int(self._clock()) // 60 * 60)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
        if self._flusher is None:
            self._start_flusher()

    def count_decisions(self, snapshot: Snapshot, decisions: Iterable[Decision]) -> None:
        """Count every decision of `snapshot` whose metadata names a rollout arm and a
        segment, in the segment's identity."""
        identities = snapshot.segment_identities
        for decision in decisions:
            metadata = decision.metadata
            if "arm" in metadata and "segment" in metadata:
                identity = identities.get(metadata["segment"])
                if identity is not None:
                    model = decision.model
                    self.count(
                        snapshot.environment,
                        decision.flag_key,
                        identity,
                        metadata["arm"],
                        str(metadata.get("rung", "")),
                        model.nested["version"] if model is not None else "",
                    )

    def pending(self) -> dict[ExposureKey, int]:
        """A copy of the counts not written yet."""
        with self._lock:
            return dict(self._counts)

    def clear(self) -> None:
        """Forget the counts not written yet."""
        with self._lock:
            self._counts = {}

    def reset_after_fork(self) -> None:
        # A forked child has no flusher thread, and must not write its parent's counts.
        self._lock = threading.Lock()
        self._counts = {}
        self._flusher = None

    def flush(self) -> int:
        """Write the counts into MetricBucket.exposures; how many exposures were written.

        On a database error the counts are kept for the next flush (at most
        MAX_PENDING_KEYS keys: the oldest minutes are dropped beyond that).
        """
        with self._lock:
            counts, self._counts = self._counts, {}
        if not counts:
            return 0
        try:
            written = _write(counts)
        except DatabaseError as exc:
            self._keep(counts)
            self._outage.failed(exc, consequence="counts kept for the next flush")
            return 0
        self._outage.recovered()
        return written

    def _keep(self, counts: dict[ExposureKey, int]) -> None:
        with self._lock:
            for key, n in self._counts.items():
                counts[key] = counts.get(key, 0) + n
            if len(counts) > MAX_PENDING_KEYS:
                newest = sorted(counts, key=lambda k: k[-1])[-MAX_PENDING_KEYS:]
                dropped = sum(counts.values()) - sum(counts[k] for k in newest)
                logger.warning("exposure counts over %d keys: %d dropped", len(counts), dropped)
                counts = {k: counts[k] for k in newest}
            self._counts = counts

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher is not None or settings.EDGEFLAGS_EXPOSURE_FLUSH_S <= 0:
                return
            self._flusher = threading.Thread(
                target=self._flush_forever, name="exposure-flush", daemon=True
            )
            self._flusher.start()

    def _flush_forever(self) -> None:
        while True:
            interval = settings.EDGEFLAGS_EXPOSURE_FLUSH_S
            time.sleep(interval if interval > 0 else 1.0)
            if interval > 0:
                self._flush_from_thread()

    def _flush_from_thread(self) -> None:
        close_old_connections()
        try:
            self.flush()
        except Exception:  # the flusher thread must outlive any one failure
            logger.exception("exposure flush failed")
        finally:
            close_old_connections()

    def flush_at_exit(self) -> None:
        """Write what is left when the process ends (only where the flusher was running)."""
        if self._flusher is not None and settings.EDGEFLAGS_EXPOSURE_FLUSH_S > 0:
            self._flush_from_thread()


def _write(counts: dict[ExposureKey, int]) -> int:
    environments = dict(
        Environment.objects.filter(key__in={k[0] for k in counts}).values_list("key", "pk")
    )
    written = 0
    with transaction.atomic():
        for (environment, flag, segment, arm, rung, model, minute), n in counts.items():
            environment_id = environments.get(environment)
            if environment_id is None:
                continue  # deleted since the decision: its counts go with it
            bucket_add((environment_id, flag, segment, arm, rung, model, minute), {"exposures": n})
            written += n
    return written


counter = ExposureCounter()
exposure_count = counter.count
exposures_count_decisions = counter.count_decisions
exposure_flush = counter.flush

atexit.register(counter.flush_at_exit)
os.register_at_fork(after_in_child=counter.reset_after_fork)
