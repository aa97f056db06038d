"""A rollout plan's settings as plain values: stages, guardrails and decision thresholds.

The database keeps a plan as JSON (rollout.models.RolloutPlan); this module parses and
validates it, names every bad field, and supplies the defaults of docs/guardrails.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ops.json_input import JsonInputError, check_json

METRICS = ("failures", "latency", "rating", "energy")
MEAN_METRICS = ("latency", "rating", "energy")  # tested with the mSPRT over per-client means
# What a metric measures, per client, oriented so that a positive difference is harm.
METRIC_LABELS = {
    "failures": "crash or error (0/1 per client and hour)",
    "latency": "share of inferences above the segment's pre-rollout p95",
    "rating": "feedback rating 1-5 (harm: control - treatment)",
    "energy": "energy per inference (mJ)",
}
SRM_BAYES_FACTOR = 1000.0  # hold on sample-ratio mismatch at p < 0.001
# The method's textbook α is 0.05; in our A/A simulation (simulate_rollout --scenario aa) that
# spends 2.4 % false rollbacks (the e-processes use about half their Ville bound), above the
# ≤ 2 % budget. 0.03 keeps the budget with a margin and delays detection by minutes.
DEFAULT_ALPHA = 0.03


class PlanInvalid(ValueError):
    """A plan setting is wrong; the message starts with the field's path."""


# Every number a plan holds, with the range it must lie in (inclusive), in one place: for
# the API, the admin form and the controller alike (README, "Rollout plans"). The upper
# bounds keep a plan from switching its own safety off: a no-data hold after 1e308 hours,
# or a burn-in no segment ever reaches, would let a rollout ramp unwatched.
PLAN_RANGES: dict[str, tuple[float, float]] = {
    "alpha": (0.0001, 0.5),
    "burnInClients": (2, 100_000),
    "noDataHours": (0.1, 720.0),  # 30 days
    "stages[].percentage": (1, 100),
    "stages[].minDwellHours": (0.0, 720.0),
    "stages[].minTreatmentClients": (0, 10_000_000),
    "stages[].maxDurationHours": (0.0, 2160.0),  # 90 days; 0 = no timeout
    "guardrails[].tau": (0.0, 1_000_000.0),
    "guardrails[].margin": (0.0, 1_000_000.0),
}
MAX_STAGES = 20
MAX_SEGMENT_KEYS = 200  # in includedSegments or excludedSegments
MAX_SEGMENT_KEY_LENGTH = 63  # SegmentRollout.segment's column
STAGE_FIELDS = frozenset({"percentage", "minDwellHours", "minTreatmentClients", "maxDurationHours"})
GUARDRAIL_FIELDS = frozenset({"metric", "tau", "margin", "relative"})


@dataclass(frozen=True, slots=True)
class Stage:
    percentage: int  # share of the segment in the treatment arm, 1..100
    min_dwell_hours: float  # no advance before this
    min_treatment_clients: int  # nor before this many treatment clients reported
    max_duration_hours: float  # hold (timeout) when the stage lasts longer

    def as_json(self) -> dict[str, Any]:
        return {
            "percentage": self.percentage,
            "minDwellHours": self.min_dwell_hours,
            "minTreatmentClients": self.min_treatment_clients,
            "maxDurationHours": self.max_duration_hours,
        }


@dataclass(frozen=True, slots=True)
class Guardrail:
    metric: str  # one of METRICS
    tau: float  # the harm to catch quickly, in the metric's units (energy: share of control)
    margin: float = 0.0  # tolerated harm
    relative: bool = False  # tau and margin are shares of the control mean

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "tau": self.tau,
            "margin": self.margin,
            "relative": self.relative,
        }


@dataclass(frozen=True, slots=True)
class PlanSpec:
    stages: tuple[Stage, ...]
    guardrails: tuple[Guardrail, ...]
    alpha: float = DEFAULT_ALPHA
    burn_in_clients: int = 50  # mean metrics start after this many clients per arm
    no_data_hours: float = 24.0

    def percentage(self, stage_index: int) -> int:
        return self.stages[min(stage_index, len(self.stages) - 1)].percentage


DEFAULT_STAGES = (
    Stage(1, 2.0, 30, 72.0),
    Stage(5, 4.0, 100, 72.0),
    Stage(25, 24.0, 300, 72.0),
    Stage(50, 24.0, 500, 72.0),
    Stage(100, 0.0, 0, 72.0),
)
DEFAULT_GUARDRAILS = (
    Guardrail("failures", 0.0),  # the rate-ratio e-process has no tau (ψ grid 1.05..8)
    Guardrail("latency", 0.01),
    Guardrail("rating", 0.1),
    Guardrail("energy", 0.05, relative=True),
)
DEFAULT_TAUS = {g.metric: g for g in DEFAULT_GUARDRAILS}


def _in_range(value: Any, field: str, rule: str) -> float:
    """`value` as a float, or PlanInvalid naming `field` when it is not a finite number in
    PLAN_RANGES[rule]."""
    low, high = PLAN_RANGES[rule]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PlanInvalid(f"{field}: must be a number")
    if not low <= value <= high:
        raise PlanInvalid(f"{field}: must be within {low:g}..{high:g}")
    return float(value)


def _number(raw: Mapping[str, Any], name: str, where: str, default: float, group: str) -> float:
    return _in_range(raw.get(name, default), f"{where}.{name}", f"{group}[].{name}")


def _known_fields(item: Mapping[str, Any], known: frozenset[str], at: str) -> None:
    unknown = sorted(str(name) for name in set(item) - known)
    if unknown:
        raise PlanInvalid(f"{at}.{unknown[0][:40]}: unknown field ({', '.join(sorted(known))})")


def _check_json(raw: Any, where: str) -> None:
    # The plan is stored, audited and shown as JSON: every part of it (even keys the parser
    # ignores) must be something PostgreSQL and orjson can take.
    try:
        check_json(raw, field=where)
    except JsonInputError as exc:
        raise PlanInvalid(str(exc)) from None


def parse_stages(raw: Any, where: str = "stages") -> tuple[Stage, ...]:
    """Stages from their JSON form; percentages must rise strictly within 1..100."""
    _check_json(raw, where)
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)) or not raw:
        raise PlanInvalid(f"{where}: must be a non-empty list of stages")
    if len(raw) > MAX_STAGES:
        raise PlanInvalid(f"{where}: at most {MAX_STAGES} stages")
    stages: list[Stage] = []
    for index, item in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise PlanInvalid(f"{at}: must be an object")
        _known_fields(item, STAGE_FIELDS, at)
        percentage = item.get("percentage")
        if isinstance(percentage, bool) or not isinstance(percentage, int):
            raise PlanInvalid(f"{at}.percentage: must be a whole number 1..100")
        if not 1 <= percentage <= 100:
            raise PlanInvalid(f"{at}.percentage: must be within 1..100")
        if stages and percentage <= stages[-1].percentage:
            raise PlanInvalid(f"{at}.percentage: must be above the previous stage's")
        stage = Stage(
            percentage,
            _number(item, "minDwellHours", at, 0.0, "stages"),
            int(_number(item, "minTreatmentClients", at, 0.0, "stages")),
            _number(item, "maxDurationHours", at, 72.0, "stages"),
        )
        if stage.max_duration_hours and stage.max_duration_hours < stage.min_dwell_hours:
            raise PlanInvalid(f"{at}.maxDurationHours: must not be below minDwellHours")
        stages.append(stage)
    return tuple(stages)


def parse_guardrails(raw: Any, where: str = "guardrails") -> tuple[Guardrail, ...]:
    """Guardrails from their JSON form; defaults fill tau for a bare {"metric": ...}."""
    _check_json(raw, where)
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise PlanInvalid(f"{where}: must be a list")
    guardrails: list[Guardrail] = []
    for index, item in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise PlanInvalid(f"{at}: must be an object")
        _known_fields(item, GUARDRAIL_FIELDS, at)
        metric = item.get("metric")
        if metric not in METRICS:
            raise PlanInvalid(f"{at}.metric: must be one of {', '.join(METRICS)}")
        if any(g.metric == metric for g in guardrails):
            raise PlanInvalid(f"{at}.metric: {metric} is listed twice")
        default = DEFAULT_TAUS[metric]
        tau = _number(item, "tau", at, default.tau, "guardrails")
        if metric != "failures" and tau <= 0:
            raise PlanInvalid(f"{at}.tau: must be above 0")
        relative = item.get("relative", default.relative)
        if not isinstance(relative, bool):
            raise PlanInvalid(f"{at}.relative: must be true or false")
        margin = _number(item, "margin", at, 0.0, "guardrails")
        guardrails.append(Guardrail(metric, tau, margin, relative))
    return tuple(guardrails)


def parse_plan(
    stages: Any,
    guardrails: Any,
    *,
    alpha: float = DEFAULT_ALPHA,
    burn_in_clients: int = 50,
    no_data_hours: float = 24.0,
) -> PlanSpec:
    """A validated PlanSpec (raises PlanInvalid naming the field)."""
    alpha = _in_range(alpha, "alpha", "alpha")
    burn_in = _in_range(burn_in_clients, "burnInClients", "burnInClients")  # a variance needs 2
    if burn_in != int(burn_in):
        raise PlanInvalid("burnInClients: must be a whole number")
    no_data_hours = _in_range(no_data_hours, "noDataHours", "noDataHours")
    return PlanSpec(
        parse_stages(stages),
        parse_guardrails(guardrails),
        alpha=alpha,
        burn_in_clients=int(burn_in),
        no_data_hours=no_data_hours,
    )


def check_segment_keys(raw: Any, where: str) -> list[str]:
    """A plan's includedSegments / excludedSegments as a person writes them: a list of at
    most MAX_SEGMENT_KEYS segment keys ("*" = every segment)."""
    _check_json(raw, where)
    if not isinstance(raw, list) or not all(isinstance(key, str) for key in raw):
        raise PlanInvalid(f"{where}: must be a list of segment keys")
    if len(raw) > MAX_SEGMENT_KEYS:
        raise PlanInvalid(f"{where}: at most {MAX_SEGMENT_KEYS} segment keys")
    for index, key in enumerate(raw):
        if not key or len(key) > MAX_SEGMENT_KEY_LENGTH:
            raise PlanInvalid(f"{where}[{index}]: 1..{MAX_SEGMENT_KEY_LENGTH} characters")
    return raw


def check_segment_identities(raw: Any, where: str) -> list[int | str]:
    """A plan's segment list as it is stored: segment identities (non-negative integers,
    which a rename leaves alone) and "*" for every segment."""
    _check_json(raw, where)
    if not isinstance(raw, list) or len(raw) > MAX_SEGMENT_KEYS:
        raise PlanInvalid(f"{where}: a list of at most {MAX_SEGMENT_KEYS} segment identities")
    for index, item in enumerate(raw):
        identity = isinstance(item, int) and not isinstance(item, bool) and item >= 0
        if not (identity or item == "*"):
            raise PlanInvalid(f'{where}[{index}]: a segment identity or "*", not {item!r}')
    return raw


def default_stages_json() -> list[dict[str, Any]]:
    return [stage.as_json() for stage in DEFAULT_STAGES]


def default_guardrails_json() -> list[dict[str, Any]]:
    return [guardrail.as_json() for guardrail in DEFAULT_GUARDRAILS]
