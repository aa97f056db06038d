"""The pure fold: one client's batch -> per-bucket deltas (no database)."""

from __future__ import annotations

from typing import Any

from telemetry.fold import BucketDelta, fold_batches

MINUTE = 1_700_000_040  # a whole minute (epoch seconds)
HOUR = MINUTE - MINUTE % 3600


def _batch(client: str, *events: dict[str, Any], env: int = 1) -> dict[str, Any]:
    return {"env": env, "client": client, "received": MINUTE, "events": list(events)}


def _event(kind: str, ts: float = MINUTE, arm: str = "treatment", **fields: Any) -> dict[str, Any]:
    return {"type": kind, "flag": "f", "segment": 7, "arm": arm, "ts": ts, **fields}


def test_fold_batches__events_in_one_minute__one_client_observation_per_metric() -> None:
    batch = _batch(
        "c1",
        _event("exposure"),
        _event("exposure", MINUTE + 59.9),
        _event("inference", ms=90.0, ok=True),
        _event("inference", ms=110.0, ok=True),
        _event("inference", ms=300.0, ok=True),
        _event("energy", millijoules=10.0),
        _event("energy", millijoules=30.0),
        _event("feedback", rating=3),
    )

    folded = fold_batches([batch], {(1, "f", 7): 100.0})

    assert folded.buckets == {
        (1, "f", 7, "treatment", "", "", MINUTE): BucketDelta(
            client_exposures=2,
            clients=1,
            latency_n=1,
            latency_sum=2 / 3,
            latency_sumsq=(2 / 3) ** 2,
            inference_ms_n=3,
            inference_ms_sum=500.0,
            energy_n=1,
            energy_sum=20.0,
            energy_sumsq=400.0,
            rating_n=1,
            rating_sum=3.0,
            rating_sumsq=9.0,
            # 90 ms in the ≤100 bin, 110 in ≤200, 300 in ≤500 (rollout/histogram.py)
            histogram={"inference_hist_05": 1, "inference_hist_06": 1, "inference_hist_07": 1},
        )
    }
    assert folded.failures == {}


def test_fold_batches__inference_at_the_threshold__not_slow() -> None:
    folded = fold_batches([_batch("c1", _event("inference", ms=100.0))], {(1, "f", 7): 100.0})

    (delta,) = folded.buckets.values()
    assert (delta.latency_n, delta.latency_sum) == (1, 0.0)


def test_fold_batches__no_frozen_p95__raw_ms_only() -> None:
    folded = fold_batches([_batch("c1", _event("inference", ms=100.0))], {(2, "f", 7): 1.0})

    (delta,) = folded.buckets.values()
    assert delta.increments() == {
        "clients": 1,
        "inference_ms_n": 1,
        "inference_ms_sum": 100.0,
        "inference_hist_05": 1,  # 100 ms: the ≤100 ms bin
    }


def test_fold_batches__minutes_and_arms__separate_buckets_each_counting_the_client() -> None:
    batch = _batch(
        "c1",
        _event("exposure", MINUTE),
        _event("exposure", MINUTE + 60),
        _event("exposure", MINUTE + 60, arm="control"),
    )

    folded = fold_batches([batch, _batch("c2", _event("exposure", MINUTE))], {})

    assert {key: d.increments() for key, d in folded.buckets.items()} == {
        (1, "f", 7, "treatment", "", "", MINUTE): {"clients": 2, "client_exposures": 2},
        (1, "f", 7, "treatment", "", "", MINUTE + 60): {"clients": 1, "client_exposures": 1},
        (1, "f", 7, "control", "", "", MINUTE + 60): {"clients": 1, "client_exposures": 1},
    }


def test_fold_batches__crashes_and_failed_inferences__one_candidate_per_flag_client_hour() -> None:
    first = _batch("c1", _event("crash", MINUTE + 120), _event("crash", MINUTE + 180))
    earlier = _batch("c1", _event("inference", MINUTE, ms=5.0, ok=False))
    next_hour = _batch("c1", _event("crash", HOUR + 3600))
    fine = _batch("c2", _event("inference", MINUTE, ms=5.0, ok=True))

    folded = fold_batches([first, earlier, next_hour, fine], {})

    assert folded.failures == {
        (1, "f", "c1", HOUR): (
            1,
            "f",
            7,
            "treatment",
            "",
            "",
            MINUTE,
        ),  # the earliest failing minute
        (1, "f", "c1", HOUR + 3600): (1, "f", 7, "treatment", "", "", HOUR + 3600),
    }


def test_fold_batches__model_quality_events__per_rung_and_version_hand_computed() -> None:
    on_v3 = {"rung": "edge", "model": "3.0.0", "arm": "none"}
    batch = _batch(
        "c1",
        _event("suggestion", accepted=True, **on_v3),
        _event("suggestion", accepted=False, **on_v3),
        _event("suggestion", accepted=True, **on_v3),
        _event("freshness", hours=10.0, **on_v3),
        _event("freshness", hours=20.0, **on_v3),
        _event("model_update", delivery="delta", ok=True, bytes=6_000, **on_v3),
        _event("model_update", delivery="full", ok=False, bytes=100, **on_v3),
        _event("suggestion", accepted=False, rung="edge", model="2.0.0", arm="none"),
    )

    folded = fold_batches([batch, _batch("c2", _event("suggestion", accepted=True, **on_v3))], {})

    v3 = folded.buckets[(1, "f", 7, "none", "edge", "3.0.0", MINUTE)]
    v2 = folded.buckets[(1, "f", 7, "none", "edge", "2.0.0", MINUTE)]
    # Two clients: acceptance 2/3 and 1/1, one observation each.
    assert (v3.acceptance_n, v3.acceptance_sum) == (2, 2 / 3 + 1.0)
    assert v3.acceptance_sumsq == (2 / 3) ** 2 + 1.0
    assert (v3.freshness_n, v3.freshness_sum, v3.freshness_sumsq) == (1, 15.0, 225.0)
    assert (v3.updates_delta, v3.updates_delta_failed, v3.update_bytes_delta) == (1, 0, 6_000)
    assert (v3.updates_full, v3.updates_full_failed, v3.update_bytes_full) == (1, 1, 100)
    assert (v2.acceptance_n, v2.acceptance_sum) == (1, 0.0)
    assert v3.clients == 2
