"""The change stream's parts without a server: the hub's fan-out and coalescing, the etag
round trip, the store's forced check for a version a refetch names, and content digests."""

from __future__ import annotations

import asyncio

import pytest

from api.stream.etags import stream_etag, version_of
from api.stream.hub import Change, Hub, Listener
from rollout.models import FlagState
from rollout.services import flag_state_update
from rollout.snapshots.store import SnapshotStore, content_digest
from tests.support.demo import load_demo


def _change(version: int) -> Change:
    return Change(version, 1_800_000_000 + version, 1_800_000_000.0 + version)


def test_hub__update_wakes_only_that_environments_listeners_and_counts_per_address() -> None:
    async def scenario() -> tuple[list[bool], int, int, int]:
        hub = Hub()
        listeners = [Listener("production", "10.0.0.1"), Listener("production", "10.0.0.1")]
        other = Listener("staging", "10.0.0.2")
        for listener in [*listeners, other]:
            hub.add(listener)
        woken = hub.update("production", _change(7))
        by_address = hub.connections_from("10.0.0.1")
        hub.remove(listeners[0])
        hub.remove(listeners[0])  # twice: counted once
        return (
            [listener.wake.is_set() for listener in [*listeners, other]],
            woken,
            by_address,
            hub.connections,
        )

    flags, woken, by_address, left = asyncio.run(scenario())

    assert flags == [True, True, False]
    assert woken == 2
    assert by_address == 2
    assert left == 2


def test_hub__many_changes_before_a_listener_runs__it_reads_only_the_latest() -> None:
    async def scenario() -> int | None:
        hub = Hub()
        listener = Listener("production", "a")
        hub.add(listener)
        for version in (3, 4, 5):
            hub.update("production", _change(version))
        await listener.wake.wait()
        latest = hub.latest("production")
        return latest.version if latest else None

    assert asyncio.run(scenario()) == 5


@pytest.mark.parametrize(
    ("sent", "version"),
    [('"v12"', 12), ("v12", 12), ('W/"v12"', 12), ("abc", None), ('"v"', None), ("", None)],
)
def test_stream_etag__round_trip_and_foreign_values(sent: str, version: int | None) -> None:
    assert version_of(stream_etag(12)) == 12
    assert version_of(sent) == version


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.django_db
def test_snapshot_at_least__newer_version_named__checks_at_once_but_bounded(publish) -> None:
    load_demo(publish)
    clock = Clock()
    store = SnapshotStore(check_interval_s=60.0, clock=clock)  # its own checks: rarely
    held = store.snapshot("production")
    assert held is not None
    state = FlagState.objects.get(flag__key="smart-compose", environment__key="production")
    publish(lambda: flag_state_update(state=state, enabled=not state.enabled))

    clock.now += 1  # well within the interval: a plain read still serves what is held
    assert store.snapshot("production").version == held.version
    newer = store.snapshot_at_least("production", held.version + 1)
    # A client naming a version that does not exist yet cannot make every request check.
    clock.now += 0.01
    store._refresh = None  # type: ignore[assignment,method-assign]  # any check would fail
    bogus = store.snapshot_at_least("production", held.version + 1000)

    assert newer is not None
    assert newer.version == held.version + 1
    assert bogus is newer


def test_content_digest__ignores_version_and_publish_time_only() -> None:
    document = {"schema": 1, "environment": "prod", "version": 3, "publishedAt": "t1", "flags": []}

    same = {**document, "version": 4, "publishedAt": "t2"}
    changed = {**document, "flags": [{"key": "x"}]}

    assert content_digest(same) == content_digest(document)
    assert content_digest(changed) != content_digest(document)
