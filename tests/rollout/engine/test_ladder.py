"""Degradation ladders in the engine: best rung met, availability, hints, safe answers."""

from __future__ import annotations

import importlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.engine.document import snapshot_from_document
from rollout.engine.evaluate import evaluate

RUNGS = [
    {
        "key": "edge",
        "uiState": {"component": "SmartCompose", "mode": "local"},
        "requirements": [
            {"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"},
            {"contextName": "benchmarkMs", "operator": "NUM_LTE", "value": "60"},
            {"contextName": "webgpu", "operator": "IN", "values": ["true"]},
        ],
    },
    {
        "key": "cloud",
        "uiState": {"component": "SmartCompose", "mode": "cloud"},
        "requirements": [{"contextName": "rttMs", "operator": "NUM_LTE", "value": "300"}],
    },
    {"key": "lite", "uiState": {"component": "TemplateReplies"}},
    {"key": "off", "uiState": {"component": "None"}},
]


def _snapshot(rollout: dict[str, Any] | None = None, enabled: bool = True, **ladder: Any) -> Any:
    return snapshot_from_document(
        {
            "flags": [
                {
                    "key": "smart-compose",
                    "kind": "string",
                    "enabled": enabled,
                    "ladder": {
                        "rungs": RUNGS,
                        "baseline": "lite",
                        "safe": "lite",
                        **({} if rollout is None else {"rollout": rollout}),
                        **ladder,
                    },
                }
            ]
        }
    )


HIGH_END = {"memoryGb": 16, "benchmarkMs": 12, "webgpu": True, "rttMs": 50}


def _rung(snapshot: Any, context: dict[str, Any]) -> str:
    return evaluate(snapshot, "smart-compose", {"targetingKey": "u", **context}).variant


def test_ladder__high_end__edge_with_ui_state() -> None:
    decision = evaluate(_snapshot(), "smart-compose", {"targetingKey": "u", **HIGH_END})

    assert (decision.variant, decision.value, decision.reason) == (
        "edge",
        "edge",
        "TARGETING_MATCH",
    )
    assert decision.ui_state == {"component": "SmartCompose", "mode": "local"}


def test_ladder__no_webgpu_good_network__cloud_and_says_why() -> None:
    decision = evaluate(
        _snapshot(), "smart-compose", {"targetingKey": "u", **HIGH_END, "webgpu": False}
    )

    assert decision.variant == "cloud"
    assert decision.unmet == {"edge": ("webgpu in [true]",)}
    assert decision.metadata["unmetRequirements"] == "edge: webgpu in [true]"


def test_ladder__rollout_covers_only_other_segments__baseline() -> None:
    rollout = {"target": "edge", "segments": {"other": {"percentage": 100, "state": "complete"}}}

    assert _rung(_snapshot(rollout=rollout), HIGH_END) == "lite"


def test_ladder__no_capability_known__safe_rung_default() -> None:
    decision = evaluate(_snapshot(), "smart-compose", {"targetingKey": "u"})

    assert (decision.variant, decision.reason) == ("lite", "DEFAULT")


def test_ladder__disabled__last_rung() -> None:
    decision = evaluate(
        _snapshot(enabled=False), "smart-compose", {"targetingKey": "u", **HIGH_END}
    )

    assert (decision.variant, decision.reason) == ("off", "DISABLED")


def test_ladder__hints__battery_pressure_offline_save_data_lower_the_rung() -> None:
    snapshot = _snapshot()

    assert _rung(snapshot, {**HIGH_END, "batteryLevel": 0.1, "charging": False}) == "cloud"
    assert _rung(snapshot, {**HIGH_END, "batteryLevel": 0.1, "charging": True}) == "edge"
    assert _rung(snapshot, {**HIGH_END, "computePressure": "critical"}) == "cloud"
    assert _rung(snapshot, {**HIGH_END, "webgpu": False, "online": False}) == "lite"
    assert _rung(snapshot, {**HIGH_END, "saveData": True}) == "lite"


capabilities = st.fixed_dictionaries(
    {
        "memoryGb": st.sampled_from([0.5, 1, 2, 4, 8, 16]),
        "benchmarkMs": st.floats(min_value=1, max_value=2000),
        "webgpu": st.booleans(),
        "rttMs": st.integers(min_value=0, max_value=3000),
    }
)
hints = st.fixed_dictionaries(
    {},
    optional={
        "batteryLevel": st.floats(min_value=0, max_value=1),
        "charging": st.booleans(),
        "computePressure": st.sampled_from(["nominal", "fair", "serious", "critical"]),
        "online": st.booleans(),
        "saveData": st.booleans(),
    },
)
ORDER = ["edge", "cloud", "lite", "off"]


def _meets(context: dict[str, Any]) -> list[bool]:
    return [
        context["memoryGb"] >= 4 and context["benchmarkMs"] <= 60 and context["webgpu"],
        context["rttMs"] <= 300,
        True,
        True,
    ]


# (Rollouts by named segment need a segmentation model: tests/rollout/engine/test_rollout.py.)
ONLY_OTHER_SEGMENT = {"segments": {"some-segment": {"percentage": 100, "state": "complete"}}}


@given(context=capabilities, rollout=st.sampled_from([None, ONLY_OTHER_SEGMENT, {}]))
@settings(max_examples=300)
def test_ladder__property__best_rung_met_unless_unavailable(context, rollout) -> None:
    rung = ORDER.index(_rung(_snapshot(rollout=rollout), context))
    meets = _meets(context)
    is_available = rollout is None
    first_allowed = 0 if is_available else ORDER.index("lite")

    assert rung == next(i for i in range(first_allowed, 4) if meets[i])


@given(context=capabilities, extra=hints)
@settings(max_examples=300)
def test_ladder__property__hints_never_raise_a_rung(context, extra) -> None:
    snapshot = _snapshot()

    without = ORDER.index(_rung(snapshot, context))
    with_hints = ORDER.index(_rung(snapshot, {**context, **extra}))

    assert with_hints >= without


@given(context=capabilities)
@settings(max_examples=100)
def test_ladder__property__meets_nothing__last_rungs(context) -> None:
    snapshot = snapshot_from_document(
        {
            "flags": [
                {
                    "key": "smart-compose",
                    "enabled": True,
                    "ladder": {
                        "rungs": [RUNGS[0], {"key": "off"}],
                        "baseline": "off",
                    },
                }
            ]
        }
    )
    low = {**context, "memoryGb": 1}

    assert _rung(snapshot, low) == "off"


def test_ladder__climb_raises__safe_rung_generic_details_logged_once_a_minute(
    monkeypatch, caplog
) -> None:
    evaluate_module = importlib.import_module("rollout.engine.evaluate")  # not the function

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret rule contents")

    monkeypatch.setattr(evaluate_module, "climb", broken)  # a bug in the ladder code
    monkeypatch.setattr(evaluate_module, "_last_logged", {})
    snapshot = _snapshot()

    with caplog.at_level("ERROR", logger="rollout.engine.evaluate"):
        first = evaluate(snapshot, "smart-compose", {"targetingKey": "u", **HIGH_END})
        again = evaluate(snapshot, "smart-compose", {"targetingKey": "v", **HIGH_END})

    assert (first.variant, first.reason, first.error_code) == ("lite", "ERROR", "GENERAL")
    assert "secret" not in (first.error_message or "")
    assert first.error_message == evaluate_module.FAILED_DETAILS
    assert again.variant == "lite"
    [record] = caplog.records  # the second failure within the minute is not logged again
    assert "smart-compose" in record.getMessage()
    assert record.exc_info is not None
    assert "secret rule contents" in str(record.exc_info[1])
