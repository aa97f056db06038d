"""The flag page: its ladder, each segment's rollout with a stage timeline and guardrail
charts (treatment vs control, the always-valid interval, n per arm), the actions a release
manager may take, and the flag's audit history."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.db.models import Sum
from django.db.models.functions import TruncHour
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from rollout.audit import Actor
from rollout.console.context import page_context
from rollout.console.overview import selected_environment
from rollout.console.svg import Band, Series, line_chart
from rollout.controller import exposures_of
from rollout.engine.ladder import explain
from rollout.guardrails import states
from rollout.guardrails.controller import mean_evidence
from rollout.guardrails.plan import MEAN_METRICS, METRIC_LABELS, PlanInvalid, PlanSpec
from rollout.guardrails.statistics import Arm
from rollout.models import AuditEntry, FlagState, MetricBucket, RolloutPlan, SegmentRollout
from rollout.roles import can_operate
from rollout.rollouts import RolloutError, rollout_action, rollout_kill

AUDIT_SHOWN = 50


@dataclass
class MetricChart:
    metric: str
    label: str
    means: SafeString
    difference: SafeString | None
    last: dict[str, Any]


@dataclass
class SegmentView:
    row: SegmentRollout
    percentage: int
    stages: list[dict[str, Any]]
    actions: list[str]
    charts: list[MetricChart] = field(default_factory=list)
    history: list[AuditEntry] = field(default_factory=list)
    verdict: dict[str, Any] = field(default_factory=dict)


def _ladder(state: FlagState, plan: RolloutPlan | None) -> list[dict[str, Any]]:
    rungs = list(state.flag.rungs.order_by("order", "pk"))
    if not rungs:
        return []
    baseline = state.flag.baseline_rung or rungs[-1].key
    target = (plan.target_rung if plan else "") or rungs[0].key
    return [
        {
            "key": rung.key,
            "runs_on": rung.get_runs_on_display(),
            "requirements": [explain(c) for c in rung.requirements or []],
            "component": (rung.ui_state or {}).get("component", ""),
            "marks": [
                name
                for name, on in (
                    ("target", plan is not None and rung.key == target),
                    ("baseline", rung.key == baseline),
                    ("safe", rung.key == state.flag.safe_rung),
                )
                if on
            ],
        }
        for rung in rungs
    ]


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


def _hourly(state: FlagState, since: datetime | None) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """segment -> arm -> hourly sums, oldest first (one query for the whole flag)."""
    if since is None:
        return {}
    columns = ["exposures", "client_exposures", "clients", "failures"] + [
        f"{m}_{part}" for m in MEAN_METRICS for part in ("n", "sum", "sumsq")
    ]
    rows = (
        MetricBucket.objects.filter(
            environment_id=state.environment_id, flag=state.flag.key, minute__gte=since
        )
        .annotate(hour=TruncHour("minute"))
        .values("segment", "arm", "hour")
        .annotate(**{c: Sum(c) for c in columns})
        .order_by("hour")
    )
    by_segment: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for item in rows:
        by_segment[item["segment"]][item["arm"]].append(dict(item))
    return by_segment


def _cumulative(hours: list[dict[str, Any]], start: datetime) -> dict[datetime, dict[str, float]]:
    totals: dict[str, float] = defaultdict(float)
    out = {}
    for item in hours:
        if item["hour"] < start.replace(minute=0, second=0, microsecond=0):
            continue
        for key, value in item.items():
            if key not in ("segment", "arm", "hour"):
                totals[key] += float(value or 0)
        out[item["hour"]] = dict(totals)
    return out


def _window_start(row: SegmentRollout, state: FlagState) -> datetime | None:
    """Where the charts start: the current stage; for a complete segment (nobody left in
    control), the last stage it ramped through."""
    if row.state != states.COMPLETE:
        return row.stage_started_at
    previous = (
        AuditEntry.objects.filter(
            flag=state.flag.key,
            environment=state.environment.key,
            segment=row.segment,
            action__in=("rollout.advance", "rollout.resume"),
        )
        .order_by("-at", "-pk")
        .values_list("at", flat=True)[1:2]
    )
    return next(iter(previous), row.stage_started_at)


def _charts(
    row: SegmentRollout,
    plan: PlanSpec | None,
    hourly: dict[str, list[dict[str, Any]]],
    start: datetime | None,
) -> list[MetricChart]:
    if start is None or plan is None:
        return []
    treatment = _cumulative(hourly.get("treatment", []), start)
    control = _cumulative(hourly.get("control", []), start)
    hours = sorted(set(treatment) & set(control))
    if not hours:
        return []
    origin = hours[0]

    def x(hour: datetime) -> float:
        return (hour - origin).total_seconds() / 3600.0

    labels = (f"{origin:%b %d %H:00}", f"{hours[-1]:%b %d %H:00} UTC")
    # The plan as the controller reads it (defaults, margins, relative scales), and the
    # controller's own computation below: the interval drawn is the interval decided on.
    guardrails = {g.metric: g for g in plan.guardrails}
    alpha = plan.alpha / max(1, len(guardrails))
    charts = []
    rates_t = [
        (x(h), treatment[h]["failures"] / max(1.0, exposures_of(treatment[h]))) for h in hours
    ]
    rates_c = [(x(h), control[h]["failures"] / max(1.0, exposures_of(control[h]))) for h in hours]
    if "failures" in guardrails:
        last_t, last_c = treatment[hours[-1]], control[hours[-1]]
        charts.append(
            MetricChart(
                "failures",
                METRIC_LABELS["failures"],
                line_chart(
                    f"{row.segment}: failures per exposure, treatment vs control",
                    [
                        Series("treatment", rates_t, "treatment"),
                        Series("control", rates_c, "control", dashed=True),
                    ],
                    x_labels=labels,
                ),
                None,
                {
                    "n_treatment": int(exposures_of(last_t)),
                    "n_control": int(exposures_of(last_c)),
                    "treatment": rates_t[-1][1],
                    "control": rates_c[-1][1],
                },
            )
        )
    for metric in MEAN_METRICS:
        guardrail = guardrails.get(metric)
        if guardrail is None:
            continue
        points_t, points_c, band, diff = [], [], [], []
        last: dict[str, Any] = {}
        for hour in hours:
            arm_t = _arm(treatment[hour], metric)
            arm_c = _arm(control[hour], metric)
            if arm_t.n < 2 or arm_c.n < 2:
                continue
            points_t.append((x(hour), arm_t.mean))
            points_c.append((x(hour), arm_c.mean))
            test = mean_evidence(guardrail, arm_t, arm_c, alpha)
            assert test.interval is not None  # means always have one
            diff.append((x(hour), test.estimate))
            band.append((x(hour), test.interval[0], test.interval[1]))
            last = {
                "n_treatment": arm_t.n,
                "n_control": arm_c.n,
                "treatment": arm_t.mean,
                "control": arm_c.mean,
                "estimate": test.estimate,
                "interval": test.interval,
            }
        if not points_t:
            continue
        charts.append(
            MetricChart(
                metric,
                METRIC_LABELS[metric],
                line_chart(
                    f"{row.segment}: {metric}, treatment vs control (cumulative in the stage)",
                    [
                        Series("treatment", points_t, "treatment"),
                        Series("control", points_c, "control", dashed=True),
                    ],
                    x_labels=labels,
                ),
                line_chart(
                    f"{row.segment}: {metric} harm (treatment − control) with its always-valid "
                    "interval",
                    [Series("harm estimate", diff, "difference")],
                    band=Band("always-valid interval", band, "interval"),
                    x_labels=labels,
                    zero_line=True,
                ),
                last,
            )
        )
    return charts


def _arm(totals: dict[str, float], metric: str) -> Arm:
    return Arm(
        int(totals.get(f"{metric}_n", 0)),
        totals.get(f"{metric}_sum", 0.0),
        totals.get(f"{metric}_sumsq", 0.0),
    )


def _flag_state(
    request: HttpRequest, key: str, environment_key: str | None
) -> tuple[FlagState, list[Any]]:
    environment, environments = selected_environment(request, environment_key)
    state = (
        FlagState.objects.select_related("flag", "environment")
        .filter(flag__key=key, environment=environment)
        .first()
    )
    if state is None:
        raise Http404(f"no flag {key!r} in this environment")
    return state, environments


def flag_context(
    request: HttpRequest, key: str, environment_key: str | None = None
) -> dict[str, Any]:
    state, environments = _flag_state(request, key, environment_key)
    plan = RolloutPlan.objects.filter(flag_state=state).first()
    segment_views: list[SegmentView] = []
    plan_problem = ""
    audit = list(
        AuditEntry.objects.filter(flag=state.flag.key, environment=state.environment.key)[
            :AUDIT_SHOWN
        ]
    )
    if plan is not None:
        spec: PlanSpec | None = None
        try:
            spec = plan.spec()
        except PlanInvalid as exc:
            plan_problem = str(exc)
        percentages = plan.stage_percentages()
        rows = list(plan.segments.order_by("segment"))
        windows = {row.segment: _window_start(row, state) for row in rows}
        starts = [start for start in windows.values() if start is not None]
        hourly = _hourly(state, min(starts) if starts else None)
        history: dict[str, list[AuditEntry]] = defaultdict(list)
        for entry in audit:
            history[entry.segment].append(entry)
        for row in rows:
            row.plan = plan  # the rows' plan is this one: no query per row
            segment_views.append(
                SegmentView(
                    row=row,
                    percentage=row.position.percentage(percentages),
                    stages=_stages(row, plan),
                    actions=_actions(row, percentages),
                    charts=_charts(row, spec, hourly.get(row.segment, {}), windows[row.segment]),
                    history=history.get(row.segment, [])[:8],
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
        "ladder": _ladder(state, plan),
        "segments": segment_views,
        "audit": audit,
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
        if exc.field == "flag" and exc.status == 404:
            raise Http404(exc.message) from exc
        context = flag_context(request, flag, environment)
        context["error"] = f"{exc.field}: {exc.message}"
        context["error_segment"] = segment or "kill"
        return render(request, "console/flag.html", context, status=exc.status)
    return HttpResponseRedirect(back)
