"""On-device model versions in the engine: what a decision names, the delta for the version a
client holds, the model's requirements and its download conditions."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rollout.engine.document import snapshot_from_document
from rollout.engine.edge_models import compile_model
from rollout.engine.evaluate import evaluate

V2_SHA = "a" * 64
V3_SHA = "b" * 64
DELTA_SHA = "c" * 64
V3 = {
    "name": "tiny-reply",
    "version": "3.0.0",
    "url": "https://models.example.com/v3.onnx",
    "sizeBytes": 48_000_000,
    "sha256": V3_SHA,
    "format": "onnx",
    "requirements": [{"contextName": "memoryGb", "operator": "NUM_GTE", "value": "6"}],
    "downloadRequirements": [
        {"contextName": "metered", "operator": "NOT_IN", "values": ["true"]},
        {"contextName": "storageFreeGb", "operator": "NUM_GTE", "value": "0.5"},
    ],
    "delta": {
        "from": "2.0.0",
        "url": "https://models.example.com/v2-v3.delta",
        "sizeBytes": 6_000_000,
        "sha256": DELTA_SHA,
    },
}
CAPABLE = {"memoryGb": 8, "webgpu": True, "storageFreeGb": 4.0}


def _snapshot(model: dict[str, Any] | None = V3) -> Any:
    edge: dict[str, Any] = {
        "key": "edge",
        "runsOn": "device",
        "requirements": [{"contextName": "webgpu", "operator": "IN", "values": ["true"]}],
    }
    if model is not None:
        edge["model"] = model
    return snapshot_from_document(
        {
            "flags": [
                {
                    "key": "smart-compose",
                    "kind": "string",
                    "enabled": True,
                    "ladder": {
                        "rungs": [edge, {"key": "cloud", "runsOn": "cloud"}, {"key": "lite"}],
                        "baseline": "lite",
                        "safe": "lite",
                    },
                }
            ]
        }
    )


def _decide(context: dict[str, Any], model: dict[str, Any] | None = V3) -> Any:
    return evaluate(_snapshot(model), "smart-compose", {"targetingKey": "u", **context})


def test_edge_rung__no_version_held__the_full_artifact() -> None:
    decision = _decide(CAPABLE)

    assert decision.variant == "edge"
    assert decision.model.nested == {
        "name": "tiny-reply",
        "version": "3.0.0",
        "format": "onnx",
        "url": "https://models.example.com/v3.onnx",
        "sizeBytes": 48_000_000,
        "sha256": V3_SHA,
        "update": "full",
    }


def test_edge_rung__holds_the_deltas_from_version__the_delta_beside_the_full_artifact() -> None:
    decision = _decide({**CAPABLE, "modelVersion": "2.0.0"})

    assert decision.model.nested["update"] == "delta"
    assert decision.model.nested["delta"] == {
        "from": "2.0.0",
        "url": "https://models.example.com/v2-v3.delta",
        "sizeBytes": 6_000_000,
        "sha256": DELTA_SHA,
    }
    assert decision.model.nested["url"] == "https://models.example.com/v3.onnx"  # fallback


def test_edge_rung__holds_this_version__nothing_to_download() -> None:
    assert _decide({**CAPABLE, "modelVersion": "3.0.0"}).model.nested["update"] == "none"


def test_edge_rung__holds_an_older_version_without_delta__the_full_artifact() -> None:
    decision = _decide({**CAPABLE, "modelVersion": "1.0.0"})

    assert decision.model.nested["update"] == "full"
    assert "delta" not in decision.model.nested


def test_flat_form__ofrep_primitives_with_the_same_content() -> None:
    flat = _decide({**CAPABLE, "modelVersion": "2.0.0"}).model.flat

    assert flat == {
        "modelName": "tiny-reply",
        "modelVersion": "3.0.0",
        "modelFormat": "onnx",
        "modelUrl": "https://models.example.com/v3.onnx",
        "modelSizeBytes": 48_000_000,
        "modelSha256": V3_SHA,
        "modelUpdate": "delta",
        "modelDeltaFrom": "2.0.0",
        "modelDeltaUrl": "https://models.example.com/v2-v3.delta",
        "modelDeltaSizeBytes": 6_000_000,
        "modelDeltaSha256": DELTA_SHA,
    }


def test_models_requirements__added_to_the_rungs() -> None:
    # The rung asks for WebGPU only; the model for 6 GB.
    decision = _decide({**CAPABLE, "memoryGb": 4})

    assert decision.variant == "cloud"
    assert decision.model is None  # no model on a cloud rung
    assert decision.unmet == {"edge": ("memoryGb ≥ 6",)}
    assert _decide({**CAPABLE, "memoryGb": 4}, model=None).variant == "edge"


def test_download_conditions__a_client_without_the_version__must_meet_them() -> None:
    metered = _decide({**CAPABLE, "metered": True})
    full_disk = _decide({**CAPABLE, "storageFreeGb": 0.1, "modelVersion": "2.0.0"})

    assert metered.variant == "cloud"
    assert metered.unmet == {"edge": ("download of tiny-reply 3.0.0: metered not in [true]",)}
    assert full_disk.variant == "cloud"
    assert full_disk.unmet == {"edge": ("download of tiny-reply 3.0.0: storageFreeGb ≥ 0.5",)}


def test_download_conditions__a_client_holding_the_version__keeps_running_it() -> None:
    decision = _decide({**CAPABLE, "metered": True, "storageFreeGb": 0.0, "modelVersion": "3.0.0"})

    assert decision.variant == "edge"
    assert decision.model.nested["update"] == "none"


def test_held_version_claim__never_lifts_a_requirement_to_run() -> None:
    decision = _decide({**CAPABLE, "memoryGb": 2, "modelVersion": "3.0.0"})

    assert decision.variant == "cloud"


@given(held=st.one_of(st.none(), st.text(max_size=12), st.integers(), st.booleans()))
def test_delta__given_exactly_when_the_held_version_is_its_from(held: Any) -> None:
    model = compile_model(V3)

    update = model.served(held).nested["update"]

    assert (update == "delta") == (held == "2.0.0")
    assert (update == "none") == (held == "3.0.0")


# --- a model version rolled out segment by segment ---------------------------------------------

V2 = {
    "name": "tiny-reply",
    "version": "2.0.0",
    "url": "https://models.example.com/v2.onnx",
    "sizeBytes": 40_000_000,
    "sha256": V2_SHA,
    "format": "onnx",
}
SEGMENT_CONTEXT = {**CAPABLE, "segment": "mid"}


def _model_rollout(percentage: int, state: str = "ramping") -> Any:
    edge = {
        "key": "edge",
        "runsOn": "device",
        "requirements": [{"contextName": "webgpu", "operator": "IN", "values": ["true"]}],
        "model": V2,
    }
    return snapshot_from_document(
        {
            "flags": [
                {
                    "key": "smart-compose",
                    "kind": "string",
                    "enabled": True,
                    "ladder": {
                        "rungs": [edge, {"key": "cloud", "runsOn": "cloud"}, {"key": "lite"}],
                        "baseline": "lite",
                        "safe": "lite",
                        "rollout": {
                            "target": "edge",
                            "model": V3,
                            "segments": {
                                "mid": {"state": state, "stage": 1, "percentage": percentage}
                            },
                        },
                    },
                }
            ]
        }
    )


def _in_segment(snapshot: Any, user: str, **context: Any) -> Any:
    # `segment` is the server's: set here through the engine's own context (no model).
    from rollout.engine.context import Context
    from rollout.engine.evaluate import _decision

    flag = snapshot.flags["smart-compose"]
    return _decision(flag, Context({"targetingKey": user, **SEGMENT_CONTEXT, **context}))


def test_model_rollout__treatment_runs_the_new_version_control_the_current() -> None:
    snapshot = _model_rollout(50)
    from rollout.engine.hashing import normalized

    users = [f"user-{n}" for n in range(400)]
    decisions = {user: _in_segment(snapshot, user) for user in users}

    for user, decision in decisions.items():
        treated = normalized(user, "smart-compose") <= 50
        assert decision.variant == "edge"  # the rung is not what is ramped
        assert decision.metadata["arm"] == ("treatment" if treated else "control")
        assert decision.model.nested["version"] == ("3.0.0" if treated else "2.0.0")
    assert 150 < sum(d.metadata["arm"] == "treatment" for d in decisions.values()) < 250


def test_model_rollout__rolled_back_segment__every_client_on_the_current_version() -> None:
    snapshot = _model_rollout(0, state="rolled_back")

    versions = {_in_segment(snapshot, f"u{n}").model.nested["version"] for n in range(200)}

    assert versions == {"2.0.0"}


def test_model_rollout__complete__every_client_on_the_new_version() -> None:
    snapshot = _model_rollout(100, state="complete")

    versions = {_in_segment(snapshot, f"u{n}").model.nested["version"] for n in range(200)}

    assert versions == {"3.0.0"}


def test_model_rollout__new_version_out_of_reach__current_version_unmeasured_in_both_arms() -> None:
    snapshot = _model_rollout(50)

    # v3 needs 6 GB (v2 nothing more than the rung): these clients keep v2, and neither arm
    # counts them, so that the arms compare devices that could run either.
    decisions = [_in_segment(snapshot, f"u{n}", memoryGb=4) for n in range(100)]

    assert {d.model.nested["version"] for d in decisions} == {"2.0.0"}
    assert all("arm" not in d.metadata for d in decisions)


def test_model_rollout__client_below_the_models_rung__unmeasured() -> None:
    decision = _in_segment(_model_rollout(50), "u1", webgpu=False)

    assert decision.variant == "cloud"
    assert "arm" not in decision.metadata
    assert decision.model is None


def test_model_rollout__segment_outside_the_plan__current_version_unmeasured() -> None:
    decision = _in_segment(_model_rollout(100, state="complete"), "u1", segment="other")

    assert decision.model.nested["version"] == "2.0.0"
    assert "arm" not in decision.metadata
