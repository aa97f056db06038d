"""Log a failing dependency once when it starts failing and once when it recovers.

The paths that keep serving through an outage (the snapshot refresh, the telemetry buffer,
/readyz) run many times a second; logging each failure would bury the first line, the one
with the cause, under thousands of copies. An `Outage` logs that first failure as a WARNING
with its context, counts the repeats silently, and logs one INFO line on recovery with how
many there were and for how long.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class Outage:
    """The failing/healthy state of one dependency as seen by one process."""

    def __init__(
        self, logger: logging.Logger, what: str, clock: Callable[[], float] = time.monotonic
    ):
        self._logger = logger
        self._what = what
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None  # when the current outage began; None while healthy
        self._repeats = 0

    @property
    def failing(self) -> bool:
        return self._since is not None

    def failed(self, reason: object, *, consequence: str = "") -> None:
        """One failure: logged when it is the first since the last recovery."""
        with self._lock:
            if self._since is not None:
                self._repeats += 1
                return
            self._since, self._repeats = self._clock(), 0
        then = f"; {consequence}" if consequence else ""
        self._logger.warning("%s failing: %s%s", self._what, reason, then)

    def recovered(self) -> None:
        """A success: logged when it ends an outage (cheap when there was none)."""
        if self._since is None:
            return
        with self._lock:
            if self._since is None:
                return
            lasted, repeats = self._clock() - self._since, self._repeats
            self._since = None
        self._logger.info(
            "%s recovered after %.0f s (%d more failure(s) not logged)", self._what, lasted, repeats
        )
