"""Reach per rung (rollout/engine/reach.py): a segment's count per rung is what decisions
serve its clients on capability alone, every client counted once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from rollout.engine.document import snapshot_from_document
from rollout.engine.evaluate import capability_context, evaluate
from rollout.engine.reach import tally
from rollout.engine.types import Snapshot
from segments.ml.population import generate_population
from segments.ml.segmentation import fit_segmentation
from tests.rollout.engine.test_settling import LADDER
from tests.support.populations import SCORE_SAMPLE, contexts

CLIENTS = 1_500


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    """A served snapshot: the demo ladder and a model fitted on a realistic fleet."""
    fitted = fit_segmentation(
        generate_population(4_000, seed=3).columns,
        previous=None,
        seed=0,
        score_sample=SCORE_SAMPLE,
    ).artifact
    return snapshot_from_document(
        {
            "flags": [
                {"key": "compose", "kind": "string", "enabled": True, "ladder": LADDER},
                {"key": "plain", "kind": "boolean", "enabled": True},
            ],
            "capabilityModel": fitted.to_json(),
            "segmentIdentities": dict(zip(fitted.keys, fitted.identities, strict=True)),
        }
    )


@pytest.fixture(scope="module")
def clients() -> list[dict[str, Any]]:
    population = generate_population(CLIENTS, seed=4)
    return [
        {k: v for k, v in client.items() if k != "saveData"}  # the hard rule aside
        for client in contexts(population.columns, CLIENTS)
    ]


def test_tally__counts__what_decisions_serve_each_segments_clients(snapshot, clients) -> None:
    served: dict[int, Counter[str]] = {}
    for client in clients:
        key = capability_context(snapshot, client).get("segment")
        identity = snapshot.segment_identities[str(key)]
        served.setdefault(identity, Counter())[evaluate(snapshot, "compose", client).variant] += 1

    reach = tally(snapshot, clients)

    assert set(reach) == set(served)
    for identity, counted in reach.items():
        assert set(counted.rungs) == {"compose"}  # ladder flags only
        assert list(counted.rungs["compose"]) == ["edge", "cloud", "lite"]  # every rung, best first
        assert sum(counted.rungs["compose"].values()) == counted.clients
        assert {r: n for r, n in counted.rungs["compose"].items() if n} == dict(served[identity])
    assert sum(c.clients for c in reach.values()) == CLIENTS


def test_tally__reach_is_more_than_one_rung_somewhere(snapshot, clients) -> None:
    reach = tally(snapshot, clients)
    rungs_reached = {r for c in reach.values() for r, n in c.rungs["compose"].items() if n}

    assert rungs_reached == {"edge", "cloud", "lite"}


def test_tally__no_model__nobody_counted(clients) -> None:
    bare = snapshot_from_document(
        {"flags": [{"key": "compose", "kind": "string", "enabled": True, "ladder": LADDER}]}
    )

    assert tally(bare, clients) == {}


def test_to_json__pairs_keep_the_ladder_order(snapshot, clients) -> None:
    counted = next(iter(tally(snapshot, clients[:50]).values()))

    document = counted.to_json()

    assert [rung for rung, _ in document["flags"]["compose"]] == ["edge", "cloud", "lite"]
    assert document["clients"] == counted.clients
