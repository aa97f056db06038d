"""Who listens to which environment, and the latest change each has seen.

A listener is woken, not sent to: it reads the latest change when it runs, so a slow client
gets one event for any number of changes in between (notifications coalesce, as ADR 0008
asks of providers), and nothing queues up behind a stalled connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Change:
    """The latest change of an environment's answers: the first version with this content."""

    version: int
    last_modified: int  # Unix seconds of that version's publish (OFREP's lastModified)
    published_at: float  # the same, to the microsecond (the stream's lag metric)


@dataclass(eq=False, slots=True)
class Listener:
    """One open stream."""

    environment: str
    address: str
    key_id: int = 0  # the key it was opened with
    origin: str | None = None  # the browser origin it was opened from
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        self.wake.set()


class Hub:
    """Listeners by environment and the latest change of each environment."""

    def __init__(self) -> None:
        self._latest: dict[str, Change] = {}
        self._listeners: dict[str, set[Listener]] = {}
        self._by_address: dict[str, int] = {}
        self.ready = asyncio.Event()  # set once the first check has loaded every environment

    @property
    def connections(self) -> int:
        return sum(len(listeners) for listeners in self._listeners.values())

    def connections_from(self, address: str) -> int:
        return self._by_address.get(address, 0)

    def latest(self, environment: str) -> Change | None:
        return self._latest.get(environment)

    def add(self, listener: Listener) -> None:
        self._listeners.setdefault(listener.environment, set()).add(listener)
        self._by_address[listener.address] = self._by_address.get(listener.address, 0) + 1

    def remove(self, listener: Listener) -> None:
        listeners = self._listeners.get(listener.environment)
        if listeners is None or listener not in listeners:
            return
        listeners.discard(listener)
        if not listeners:
            del self._listeners[listener.environment]
        left = self._by_address[listener.address] - 1
        if left:
            self._by_address[listener.address] = left
        else:
            del self._by_address[listener.address]

    def update(self, environment: str, change: Change) -> int:
        """Record `change` and wake the environment's listeners. Returns how many were woken."""
        self._latest[environment] = change
        listeners = self._listeners.get(environment, ())
        for listener in listeners:
            listener.wake.set()
        return len(listeners)

    def close_where(self, condition: Callable[[Listener], bool]) -> int:
        """Close every listener that meets `condition` (a key revoked meanwhile); how many."""
        closing = [
            listener
            for listeners in self._listeners.values()
            for listener in listeners
            if condition(listener)
        ]
        for listener in closing:
            listener.close()
        return len(closing)

    def close_all(self) -> None:
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.close()
