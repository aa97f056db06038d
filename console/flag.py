"""The flag page: its ladder, each segment's rollout with a stage timeline and guardrail
charts (treatment vs control, the always-valid interval, n per arm), the actions a release
manager may take, and the flag's audit history."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from console.context import page_context
from console.overview import selected_environment
from console.svg import Band, Series, line_chart
from ops.errors import Conflict, NotFound
from rollout.audit import Actor
from rollout.guardrails import states
from rollout.guardrails.plan import MEAN_METRICS, METRIC_LABELS, PlanInvalid, PlanSpec
from rollout.models import AuditEntry, FlagState, RolloutPlan, SegmentRollout
from rollout.roles import can_operate
from rollout.rollouts import RolloutError, rollout_action, rollout_kill
from rollout.selectors import (
    StagePoint,
    flag_audit,
    flag_ladder,
    flag_state_of,
    open_retraining_requests,
    plan_rows_by_key,
    rollout_plan_of,
    stage_series_by_segment,
)

AUDIT_SHOWN = 50


@dataclass
class MetricChart:
    metric: str
    label: str
    means: SafeString
    difference: SafeString | None
    last: dict[str, Any]


@dataclass
class SegmentRolloutView:
    row: SegmentRollout
    percentage: int
    stages: list[dict[str, Any]]
    actions: list[str]
    charts: list[MetricChart] = field(default_factory=list)
    history: list[AuditEntry] = field(default_factory=list)
    verdict: dict[str, Any] = field(default_factory=dict)


def _actions(row: SegmentRollout, percentages: tuple[int, ...]) -> list[str]:
    allowed = []
    for action in states.MANUAL_ACTIONS:
        try:
            states.transition(row.position, action, percentages)
        except states.TransitionInvalid:
            continue
        allowed.append(action)
    return allowed


def _stages(row: SegmentRollout, plan: RolloutPlan) -> list[dict[str, Any]]:
    done_through = row.stage if row.state != states.PENDING else -1
    items = []
    for index, stage in enumerate(plan.stages):
        status = "upcoming"
        if row.state == states.COMPLETE or index < done_through:
            status = "done"
        elif index == row.stage and row.state in (states.RAMPING, states.PAUSED, states.HELD):
            status = "current"
        items.append({"number": index + 1, "percentage": stage["percentage"], "status": status})
    return items


def _charts(
    row: SegmentRollout, plan: PlanSpec | None, points: list[StagePoint]
) -> list[MetricChart]:
    """The segment's guardrail charts from the points the selector hands over: windows and
    evidence computed by the function the controller decides with (rollout.guardrails.
    series), so the interval drawn at the last point is the interval decided on."""
    if plan is None or not points:
        return []
    origin = points[0].at
    hours = [(p.at - origin).total_seconds() / 3600.0 for p in points]
    labels = (f"{origin:%b %d %H:%M}", f"{points[-1].at:%b %d %H:%M} UTC")
    guarded = {g.metric for g in plan.guardrails}
    charts = []
    if "failures" in guarded:
        charts.append(_failure_chart(row.segment_key, points, hours, labels))
    for metric in MEAN_METRICS:
        if metric in guarded:
            chart = _mean_chart(row.segment_key, metric, points, hours, labels)
            if chart is not None:
                charts.append(chart)
    return charts


def _failure_chart(
    segment: str, points: list[StagePoint], hours: list[float], labels: tuple[str, str]
) -> MetricChart:
    rates = [(at, *p.failure_rates()) for at, p in zip(hours, points, strict=True)]
    last = points[-1]
    return MetricChart(
        "failures",
        METRIC_LABELS["failures"],
        line_chart(
            f"{segment}: failures per exposure, treatment vs control",
            [
                Series("treatment", [(t, r) for t, r, _ in rates], "treatment"),
                Series("control", [(t, r) for t, _, r in rates], "control", dashed=True),
            ],
            x_labels=labels,
        ),
        None,
        {
            "n_treatment": last.window.exposures_treatment,
            "n_control": last.window.exposures_control,
            "treatment": rates[-1][1],
            "control": rates[-1][2],
        },
    )


def _mean_chart(
    segment: str,
    metric: str,
    points: list[StagePoint],
    hours: list[float],
    labels: tuple[str, str],
) -> MetricChart | None:
    """Treatment and control means, and the harm estimate with its always-valid interval
    once both arms are past the burn-in (as for the controller); None before any data."""
    points_t, points_c, band, diff = [], [], [], []
    last_seen: dict[str, Any] = {}
    for at, point in zip(hours, points, strict=True):
        arm_t, arm_c = point.window.means[metric]
        if arm_t.n < 2 or arm_c.n < 2:
            continue
        points_t.append((at, arm_t.mean))
        points_c.append((at, arm_c.mean))
        last_seen = {
            "n_treatment": arm_t.n,
            "n_control": arm_c.n,
            "treatment": arm_t.mean,
            "control": arm_c.mean,
        }
        evidence = next((e for e in point.evidence if e.metric == metric), None)
        if evidence is not None and evidence.interval is not None:
            diff.append((at, evidence.estimate))
            band.append((at, evidence.interval[0], evidence.interval[1]))
            last_seen |= {"estimate": evidence.estimate, "interval": evidence.interval}
    if not points_t:
        return None
    harm = (
        line_chart(
            f"{segment}: {metric} harm (treatment − control) with its always-valid interval",
            [Series("harm estimate", diff, "difference")],
            band=Band("always-valid interval", band, "interval"),
            x_labels=labels,
            zero_line=True,
        )
        if diff
        else None
    )
    return MetricChart(
        metric,
        METRIC_LABELS[metric],
        line_chart(
            f"{segment}: {metric}, treatment vs control (cumulative in the stage)",
            [
                Series("treatment", points_t, "treatment"),
                Series("control", points_c, "control", dashed=True),
            ],
            x_labels=labels,
        ),
        harm,
        last_seen,
    )


def _flag_state(
    request: HttpRequest, key: str, environment_key: str | None
) -> tuple[FlagState, list[Any]]:
    environment, environments = selected_environment(request, environment_key)
    state = flag_state_of(key, environment)
    if state is None:
        raise Http404(f"no flag {key!r} in this environment")
    return state, environments


def flag_context(
    request: HttpRequest,
    key: str,
    environment_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or timezone.now()
    state, environments = _flag_state(request, key, environment_key)
    plan = rollout_plan_of(state)
    segment_views: list[SegmentRolloutView] = []
    plan_problem = ""
    audit = flag_audit(state, AUDIT_SHOWN)
    if plan is not None:
        spec: PlanSpec | None = None
        try:
            spec = plan.spec()
        except PlanInvalid as exc:
            plan_problem = str(exc)
        percentages = plan.stage_percentages()
        rows = plan_rows_by_key(plan)
        for row in rows:
            row.plan = plan  # the rows' plan is this one: no query per row
        series = {} if spec is None else stage_series_by_segment(state, rows, spec, now)
        history: dict[int, list[AuditEntry]] = defaultdict(list)
        for entry in audit:
            if entry.segment_identity is not None:
                history[entry.segment_identity].append(entry)
        for row in rows:
            segment_views.append(
                SegmentRolloutView(
                    row=row,
                    percentage=row.position.percentage(percentages),
                    stages=_stages(row, plan),
                    actions=_actions(row, percentages),
                    charts=_charts(row, spec, series.get(row.segment_identity, [])),
                    history=history.get(row.segment_identity, [])[:8],
                    verdict=row.last_verdict or {},
                )
            )
    return page_context(request) | {
        "title": f"{state.flag.key} in {state.environment.key}",
        "section": "overview",
        "state": state,
        "flag": state.flag,
        "environment": state.environment,
        "environments": environments,
        "plan": plan,
        "plan_problem": plan_problem,
        "ladder": flag_ladder(state, plan),
        "segments": segment_views,
        "audit": audit,
        "retraining": open_retraining_requests(state),
    }


def flag_page(request: HttpRequest, key: str) -> HttpResponse:
    return render(request, "console/flag.html", flag_context(request, key))


@require_POST
def rollout_action_view(request: HttpRequest) -> HttpResponse:
    """A release manager's action from the flag page: one segment, or the kill switch."""
    flag = request.POST.get("flag", "")
    environment = request.POST.get("environment", "")
    action = request.POST.get("action", "")
    segment = request.POST.get("segment", "")
    reason = request.POST.get("reason", "")
    back = reverse("console-flag", args=[flag]) + "?" + urlencode({"environment": environment})
    if not can_operate(request.user):
        return render(
            request,
            "console/forbidden.html",
            page_context(request, title="Not allowed", section="overview"),
            status=403,
        )
    try:
        if action == "kill":
            rows = rollout_kill(
                flag=flag, environment=environment, actor=Actor.of(request.user), reason=reason
            )
            messages.success(request, f"Kill switch: rolled back {len(rows)} segment(s).")
        else:
            row = rollout_action(
                flag=flag,
                environment=environment,
                segment=segment,
                action=action,
                actor=Actor.of(request.user),
                reason=reason,
            )
            messages.success(
                request, f"{segment}: {action} done; it is now {row.get_state_display()}."
            )
    except RolloutError as exc:
        if exc.field == "flag" and isinstance(exc, NotFound):
            raise Http404(exc.message) from exc
        context = flag_context(request, flag, environment)
        context["error"] = f"{exc.field}: {exc.message}"
        context["error_segment"] = segment or "kill"
        status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 400
        return render(request, "console/flag.html", context, status=status)
    return HttpResponseRedirect(back)
