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
