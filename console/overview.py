"""The overview: flags × segments of one environment, each cell the rung served, the stage,
the state (in words and colour) and the latest guardrail verdict. It refreshes itself."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from console.context import page_context
from rollout.models import Environment, FlagState, RolloutPlan, Rung, SegmentRollout
from rollout.rollouts import known_segments
from rollout.selectors import environment_list, flag_states_overview, flag_tags

STATE_FILTERS = ("pending", "ramping", "paused", "held", "complete", "rolled_back", "no plan")
REFRESH_S = 15


@dataclass(frozen=True)
class Cell:
    segment: str
    text: str  # the rung served and the share: "edge · 25 %"
    state: str  # css class and words: ramping, held, rolled_back, …
    state_words: str
    verdict: str  # the latest guardrail verdict in words ("" when none)
    model: str = ""  # the on-device model version(s) the segment runs: "tiny-reply 3.0.0 · 25 %"


@dataclass(frozen=True)
class Row:
    flag: str
    kind: str
    tags: list[str]
    enabled: bool
    cells: list[Cell]
    summary: Cell | None = None  # one cell across every segment: off, or not an edge feature


def _verdict(row: SegmentRollout) -> str:
    verdict = row.last_verdict or {}
    if not verdict or row.state in ("pending", "complete"):
        return ""
    if row.state == "rolled_back" and verdict.get("action") != "rollback":
        return ""  # rolled back by a person: the last automatic verdict no longer applies
    metrics = verdict.get("metrics") or []
    strongest = max(metrics, key=lambda m: m.get("logEValue") or -math.inf, default=None)
    action = str(verdict.get("action", ""))
    if strongest is None:
        return f"{action}: no metric yet"
    e_value = strongest.get("eValue")
    e_text = "—" if e_value is None else f"{e_value:.3g}"
    return f"{action}: max e {e_text} ({strongest.get('metric')}) of {verdict.get('threshold'):.0f}"


def _cell(segment: str, state: FlagState, rungs: list[Rung], row: SegmentRollout | None) -> Cell:
    if not state.enabled:
        return Cell(segment, "off", "off", "flag off", "")
    if not rungs:
        return Cell(segment, "on (rules)", "no-plan", "not an edge feature", "")
    try:
        plan = state.rollout_plan
    except FlagState.rollout_plan.RelatedObjectDoesNotExist:
        return Cell(
            segment,
            f"{rungs[0].key} · all",
            "no-plan",
            "generally available",
            "",
            _model_words(state, None, 0),
        )
    baseline = state.flag.baseline_rung or rungs[-1].key
    target = plan.target_rung or rungs[0].key
    if row is None:
        return Cell(segment, baseline, "excluded", "not in the plan", "")
    percentage = row.position.percentage(plan.stage_percentages())
    words = row.get_state_display()
    if row.state == "held":
        words = f"held: {row.get_hold_reason_display()}"
    if row.state in ("ramping", "paused", "held"):
        words += f", stage {row.stage + 1} of {len(plan.stages)}"
    if plan.target_model is not None:
        # A model rollout: every rung stays available; the share runs the new version.
        return Cell(
            segment,
            f"{rungs[0].key} · all",
            row.state,
            words,
            _verdict(row),
            _model_words(state, plan, percentage),
        )
    text = f"{target} · {percentage} %" if percentage else baseline
    return Cell(segment, text, row.state, words, _verdict(row), _model_words(state, None, 0))


def _model_words(state: FlagState, plan: RolloutPlan | None, percentage: int) -> str:
    """The model version(s) a segment runs on the on-device rung, in words."""
    current = state.model_version
    new = plan.target_model if plan is not None else None
    if new is None or percentage <= 0:
        return str(current) if current is not None else ""
    if percentage >= 100 or current is None:
        return f"{new}" if percentage >= 100 else f"{new} · {percentage} %"
    return f"{new} · {percentage} %, {current.version} for the rest"


def overview_rows(
    environment: Environment, tag: str = "", state_filter: str = ""
) -> tuple[list[str], list[Row]]:
    """The segment columns and one row per flag (filtered by tag and by segment state)."""
    segments = known_segments()
    states = flag_states_overview(environment)
    rows = []
    for state in states:
        if tag and tag not in (state.flag.tags or []):
            continue
        rungs = list(state.flag.rungs.all())
        by_segment: dict[int, SegmentRollout] = {}
        with contextlib.suppress(FlagState.rollout_plan.RelatedObjectDoesNotExist):
            by_segment = {r.segment_identity: r for r in state.rollout_plan.segments.all()}
        cells = [_cell(key, state, rungs, by_segment.get(i)) for i, key in segments.items()]
        if state_filter:
            wanted = "no-plan" if state_filter == "no plan" else state_filter
            if not any(cell.state == wanted for cell in cells):
                continue
        summary = None
        if not state.enabled or not rungs:
            summary = cells[0] if cells else _cell("", state, rungs, None)
        rows.append(
            Row(
                state.flag.key,
                state.flag.kind,
                list(state.flag.tags or []),
                state.enabled,
                cells,
                summary,
            )
        )
    return list(segments.values()), rows


def selected_environment(
    request: HttpRequest, wanted: str | None = None
) -> tuple[Environment | None, list[Environment]]:
    """The environment asked for (default production), and every environment."""
    environments = environment_list()
    wanted = wanted or request.GET.get("environment") or "production"
    chosen = next((e for e in environments if e.key == wanted), None)
    return chosen or (environments[0] if environments else None), environments


def overview_page(request: HttpRequest) -> HttpResponse:
    environment, environments = selected_environment(request)
    tag = request.GET.get("tag", "")
    state_filter = request.GET.get("state", "")
    if state_filter and state_filter not in STATE_FILTERS:
        state_filter = ""
    segments, rows = overview_rows(environment, tag, state_filter) if environment else ([], [])
    tags = flag_tags()
    context: dict[str, Any] = page_context(
        request,
        title="Rollouts",
        section="overview",
    )
    context |= {
        "environment": environment,
        "environments": environments,
        "segments": segments,
        "rows": rows,
        "tag": tag,
        "tags": tags,
        "state_filter": state_filter,
        "state_filters": STATE_FILTERS,
        "refresh_s": REFRESH_S,
    }
    template = (
        "console/overview_matrix.html" if request.GET.get("partial") else "console/overview.html"
    )
    return render(request, template, context)
