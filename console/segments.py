"""The console's Segments page: capability segments, their profiles, shares, drift and runs,
and the review of new clusters (accept, rename, merge) by release managers.

Reads are a fixed handful of queries whatever the number of segments and runs; charts are
inline SVG drawn here, each with a <title>, an aria-label and the numbers as text beside it.
A review action is a POST that is first shown for confirmation: the change is carried out in
a transaction that is rolled back, so the confirmation states exactly what will happen (and
bad input is refused before anyone confirms); the confirmed POST does it again for real.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from capability_probe.vocabulary import CLUSTERED, MOBILE, NUMBERS, SHADER_F16, WEBGPU
from rollout.audit import Actor
from rollout.roles import can_operate
from rollout.segment_review import ReviewOutcome, ReviewRequest, segment_review
from rollout.selectors import rollout_rows_by_segment
from segments.models import CapabilitySegment
from segments.selectors import run_latest_succeeded, run_list, segment_list, share_history_rows
from segments.services import SegmentError

RUNS_SHOWN = 20
SHARE_HISTORY_RUNS = 30

# Centroid fields people know by another name, with their unit; "%" fields are shares 0..1.
# Any other numeric field of a centroid is drawn under its own name.
# The measurements come first, named and measured as the capability vocabulary says.
CENTROID_FIELDS: dict[str, tuple[str, str]] = {
    **{f.wire: (f.label, f.unit) for f in CLUSTERED if f.kind in NUMBERS},
    **{f"{f.wire}Share": (f.label, "%") for f in (WEBGPU, SHADER_F16, MOBILE)},
    # Reported vs estimated: how much of the segment's memory its clients reported (the rest
    # is estimated: Safari, Firefox), and how many measured their network themselves.
    "memoryReportedShare": ("memory reported (rest estimated)", "%"),
    "networkMeasuredShare": ("network measured", "%"),
    "share4g": ("on 4g", "%"),
}
CENTROID_SKIPPED = {"clients"}  # the cluster's size at fit time: the segment's size is shown

# Decile PSI (ten bins): the usual reading; share PSI: drift.py's advice for ~6 segments.
FEATURE_PSI_BANDS = ((0.25, "large shift"), (0.1, "moderate shift"), (0.0, "stable"))
SHARE_PSI_BANDS = ((0.05, "alert"), (0.02, "watch"), (0.0, "stable"))


# Charts


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}".removesuffix(".0")
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _field_text(name: str, value: float | None) -> str:
    if value is None:
        return "not reported"
    unit = CENTROID_FIELDS.get(name, ("", ""))[1]
    if unit == "%":
        return f"{value * 100:.0f} %"
    return f"{_number(value)} {unit}".strip()


def _field_label(name: str) -> str:
    return CENTROID_FIELDS.get(name, (name, ""))[0]


def centroid_fields(segments: Sequence[CapabilitySegment]) -> list[str]:
    """The numeric fields the segments' centroids hold, known ones first, in a fixed order."""
    present = {
        name
        for segment in segments
        for name, value in (segment.centroid or {}).items()
        if name not in CENTROID_SKIPPED and (value is None or isinstance(value, int | float))
    }
    known = [name for name in CENTROID_FIELDS if name in present]
    return known + sorted(present - set(known))


def centroid_chart(
    segment: CapabilitySegment, fields: Sequence[str], maxima: Mapping[str, float]
) -> SafeString:
    """Horizontal bars of the segment's centroid in raw units, each field scaled to the
    largest value of that field across the segments shown."""
    label_w, bar_w, value_w, row_h = 78, 140, 86, 20
    width = label_w + bar_w + value_w
    height = row_h * len(fields) + 4
    centroid = segment.centroid or {}
    described = ", ".join(f"{_field_label(n)} {_field_text(n, centroid.get(n))}" for n in fields)
    title = f"Centroid of {segment.key}: {described}"
    parts = [
        f'<svg class="seg-bars" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for row, name in enumerate(fields):
        value = centroid.get(name)
        y = 2 + row * row_h
        text_y = y + row_h * 0.7
        parts.append(
            f'<text class="seg-tick" x="{label_w - 6}" y="{text_y:.1f}" text-anchor="end">'
            f"{escape(_field_label(name))}</text>"
            f'<rect class="seg-track" x="{label_w}" y="{y + 4}" width="{bar_w}" '
            f'height="{row_h - 8}"/>'
        )
        top = maxima.get(name, 0.0)
        if isinstance(value, int | float) and math.isfinite(value) and top > 0:
            length = max(1.0, bar_w * max(0.0, float(value)) / top)
            parts.append(
                f'<rect class="seg-bar" x="{label_w}" y="{y + 4}" width="{length:.1f}" '
                f'height="{row_h - 8}"><title>{escape(_field_label(name))}: '
                f"{escape(_field_text(name, value))}</title></rect>"
            )
        parts.append(
            f'<text class="seg-value" x="{label_w + bar_w + 6}" y="{text_y:.1f}">'
            f"{escape(_field_text(name, value))}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped


def share_chart(
    key: str, points: Sequence[tuple[datetime, float]], span: tuple[float, float]
) -> SafeString:
    """A small line chart of a segment's share (%) over the runs' start times."""
    width, height, left, right, top, bottom = 300, 110, 40, 10, 10, 24
    if not points:
        return mark_safe(  # noqa: S308 - escaped key, fixed markup
            f'<p class="seg-empty">{escape(key)}: no share recorded yet.</p>'
        )
    peak = max(share for _, share in points)
    y_max = max(1.0, math.ceil(peak * 1.15))
    x_low, x_high = span
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(moment: datetime) -> float:
        if x_high <= x_low:
            return left + plot_w / 2
        return left + (moment.timestamp() - x_low) / (x_high - x_low) * plot_w

    def sy(share: float) -> float:
        return top + (1 - share / y_max) * plot_h

    first, last = points[0], points[-1]
    # Runs a day or less apart need the hour to tell them apart.
    moment = "%Y-%m-%d" if x_high - x_low > 2 * 86400 else "%m-%d %H:%M"
    title = (
        f"Share of {key} over {len(points)} run(s): {first[1]:.1f} % on "
        f"{first[0]:%Y-%m-%d}, {last[1]:.1f} % on {last[0]:%Y-%m-%d}"
    )
    parts = [
        f'<svg class="seg-line" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for tick in (0.0, y_max / 2, y_max):
        y = sy(tick)
        parts.append(
            f'<line class="seg-gridline" x1="{left}" x2="{width - right}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="seg-tick" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_number(tick)} %</text>"
        )
    if len(points) > 1:
        path = " ".join(f"{sx(at):.1f},{sy(share):.1f}" for at, share in points)
        parts.append(f'<polyline class="seg-path" fill="none" points="{path}"/>')
    for at, share in points:
        parts.append(
            f'<circle class="seg-dot" cx="{sx(at):.1f}" cy="{sy(share):.1f}" r="3">'
            f"<title>{at:%Y-%m-%d %H:%M}: {share:.1f} %</title></circle>"
        )
    parts.append(
        f'<text class="seg-tick" x="{left}" y="{height - 6}">{first[0]:{moment}}</text>'
        f'<text class="seg-tick" x="{width - right}" y="{height - 6}" text-anchor="end">'
        f"{last[0]:{moment}}</text></svg>"
    )
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped


# Reach: rungs best first, drawn darkest first (the classes are in the page's style).
REACH_CLASSES = ("seg-reach-0", "seg-reach-1", "seg-reach-2", "seg-reach-3")


@dataclass(frozen=True)
class FlagReach:
    """What one ladder flag's rungs reach in one segment: (rung, clients, share) best first."""

    flag: str
    clients: int
    rungs: list[tuple[str, int, float]]

    @property
    def text(self) -> str:
        return " · ".join(f"{rung} {share * 100:.0f} %" for rung, _, share in self.rungs)

    def chart(self) -> SafeString:
        """A stacked bar of the shares, each part titled with its rung and share."""
        width, height = 240, 14
        title = f"{self.flag}: {self.text} of {self.clients:,} sampled clients"
        parts = [
            f'<svg class="seg-reach" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<rect class="seg-track" x="0" y="0" width="{width}" height="{height}"/>'
        ]
        x = 0.0
        for index, (rung, count, share) in enumerate(self.rungs):
            if count == 0:
                continue
            length = width * share
            css = REACH_CLASSES[min(index, len(REACH_CLASSES) - 1)]
            parts.append(
                f'<rect class="{css}" x="{x:.1f}" y="0" width="{length:.1f}" height="{height}">'
                f"<title>{escape(rung)}: {share * 100:.1f} % ({count:,})</title></rect>"
            )
            x += length
        parts.append("</svg>")
        return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped


def segment_reach(segment: CapabilitySegment) -> list[FlagReach]:
    """The stored reach of a segment (rollout/segment_reach.py), one row per ladder flag."""
    reach = segment.reach or {}
    rows = []
    for flag, pairs in sorted((reach.get("flags") or {}).items()):
        total = sum(int(n) for _, n in pairs)
        if total <= 0:
            continue
        rows.append(FlagReach(flag, total, [(str(r), int(n), int(n) / total) for r, n in pairs]))
    return rows


# Reads


@dataclass(frozen=True)
class LearnedSegmentView:
    segment: CapabilitySegment
    merged_into: str | None
    rollout_rows: int
    chart: SafeString
    merge_targets: list[str]
    reach: list[FlagReach]

    @property
    def reach_note(self) -> str:
        """Where the reach figures come from, for the text under them."""
        sampled = (self.segment.reach or {}).get("sampled")
        at = parse_datetime(str((self.segment.reach or {}).get("at") or ""))
        when = f" on {timezone.localtime(at):%Y-%m-%d %H:%M}" if at else ""
        return f"of the segment's clients in a sample of {sampled:,}{when}" if sampled else ""

    @property
    def size_text(self) -> str:
        return f"{self.segment.size:,}"

    @property
    def share_text(self) -> str:
        return f"{self.segment.share * 100:.1f} %"

    @property
    def status_text(self) -> str:
        if self.merged_into:
            return f"merged into {self.merged_into}"
        return str(self.segment.get_status_display())


@dataclass(frozen=True)
class ShareHistory:
    runs: list[tuple[int, datetime]]  # (run id, started) oldest first
    keys: list[str]
    table: list[tuple[int, datetime, list[float | None]]]  # a row per run: share % per key
    charts: list[tuple[str, SafeString]]


def _share_history(segments: Sequence[CapabilitySegment]) -> ShareHistory:
    """Each segment's share in the recent succeeded runs, followed through renames by
    identity (a run's sizes are keyed by the keys its model had)."""
    rows = share_history_rows(SHARE_HISTORY_RUNS)
    key_of_identity = {s.identity: s.key for s in segments}
    runs: list[tuple[int, datetime]] = []
    shares: dict[str, dict[int, float]] = {}  # current key -> run id -> share %
    for row in rows:
        sizes: dict[str, int] = row["run__sizes"] or {}
        total = sum(sizes.values())
        if total <= 0:
            continue
        run = row["run_id"]
        runs.append((run, timezone.localtime(row["run__started_at"])))
        identity_of = dict(
            zip(row["artifact__keys"] or [], row["artifact__identities"] or [], strict=False)
        )
        for key_then, size in sizes.items():
            identity = identity_of.get(key_then)
            key = key_of_identity.get(identity, key_then) if identity is not None else key_then
            of_key = shares.setdefault(key, {})
            of_key[run] = of_key.get(run, 0.0) + size / total * 100
    shown = [s.key for s in segments if s.key in shares]
    span = (runs[0][1].timestamp(), runs[-1][1].timestamp()) if runs else (0.0, 0.0)
    charts = [
        (
            segment.key,
            share_chart(
                segment.key,
                [
                    (at, shares[segment.key][run])
                    for run, at in runs
                    if run in shares.get(segment.key, {})
                ],
                span,
            ),
        )
        for segment in segments
        if segment.status != CapabilitySegment.Status.RETIRED
    ]
    table = [(run, at, [shares[key].get(run) for key in shown]) for run, at in runs]
    return ShareHistory(runs, shown, table, charts)


def _band(value: float, bands: Sequence[tuple[float, str]]) -> str:
    return next(text for floor, text in bands if value >= floor)


def _drift(run: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The latest succeeded run's drift as rows people can read (None: no run yet)."""
    if run is None:
        return None
    drift: dict[str, Any] = dict(run["drift"] or {})
    summary: list[tuple[str, str, str]] = []  # (figure, value, reading)
    if "share_psi" in drift:
        value = float(drift.pop("share_psi"))
        summary.append(("Segment share PSI", f"{value:.4f}", _band(value, SHARE_PSI_BANDS)))
    if "max_feature_psi" in drift:
        value = float(drift.pop("max_feature_psi"))
        summary.append(("Largest feature PSI", f"{value:.4f}", _band(value, FEATURE_PSI_BANDS)))
    if "ari" in drift:
        value = float(drift.pop("ari"))
        summary.append(
            (
                "Adjusted Rand index (old vs new model, same clients)",
                f"{value:.3f}",
                "1 = the same partition; lower = clients moved between segments",
            )
        )
    previous = drift.pop("previous_run", None)
    features_raw = drift.pop("feature_psi", {}) or {}
    features = sorted(
        (
            (name, float(value), _band(float(value), FEATURE_PSI_BANDS))
            for name, value in features_raw.items()
        ),
        key=lambda item: -item[1],
    )
    for name, value in sorted(drift.items()):  # anything a later job adds
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        summary.append((name.replace("_", " "), shown, ""))
    return {
        "run": run["pk"],
        "started_at": run["started_at"],
        "previous_run": previous,
        "summary": summary,
        "features": features,
    }


def _base_context(request: HttpRequest) -> dict[str, Any]:
    return {
        **admin.site.each_context(request),
        "title": "Capability segments",
        "section": "segments",
        "can_operate": can_operate(request.user),
    }


def _page_context(request: HttpRequest) -> dict[str, Any]:
    # Review first (it waits for a person), then active by share; retired last.
    order: dict[str, int] = {
        CapabilitySegment.Status.REVIEW: 0,
        CapabilitySegment.Status.ACTIVE: 1,
        CapabilitySegment.Status.RETIRED: 2,
    }
    segments = sorted(segment_list(), key=lambda s: (order.get(s.status, 3), -s.share, s.identity))
    key_by_pk = {s.pk: s.key for s in segments}
    rollout_rows = rollout_rows_by_segment()
    fields = centroid_fields(segments)
    maxima = {
        name: max(
            (
                float(value)
                for s in segments
                if isinstance(value := (s.centroid or {}).get(name), int | float)
            ),
            default=0.0,
        )
        for name in fields
    }
    targets = [s.key for s in segments if s.status != CapabilitySegment.Status.RETIRED]
    views = [
        LearnedSegmentView(
            segment=s,
            merged_into=key_by_pk.get(s.merged_into_id) if s.merged_into_id else None,
            rollout_rows=rollout_rows.get(s.identity, 0),
            chart=centroid_chart(s, fields, maxima),
            merge_targets=[key for key in targets if key != s.key],
            reach=segment_reach(s),
        )
        for s in segments
    ]
    retired = [v for v in views if v.segment.status == CapabilitySegment.Status.RETIRED]
    live = [v for v in views if v.segment.status != CapabilitySegment.Status.RETIRED]
    groups = [{"retired": False, "views": live}]
    if retired:
        groups.append({"retired": True, "views": retired})
    runs = run_list(RUNS_SHOWN)
    latest = run_latest_succeeded()
    return {
        **_base_context(request),
        "review": [v for v in views if v.segment.status == CapabilitySegment.Status.REVIEW],
        "groups": groups,
        "history": _share_history(segments),
        "drift": _drift(latest),
        "runs": runs,
        "run_now_url": reverse("admin:segments_segmentationrun_run_now"),
        "runs_url": reverse("admin:segments_segmentationrun_changelist"),
    }


def _render(request: HttpRequest, context: dict[str, Any], status: int = 200) -> TemplateResponse:
    return TemplateResponse(request, "console/segments.html", context, status=status)


def segments_page(request: HttpRequest) -> HttpResponse:
    """The Segments page (staff: viewers read it, release managers also act on it)."""
    return _render(request, _page_context(request))


# Review actions


def _preview(actor: Actor, form: ReviewRequest) -> ReviewOutcome:
    """Carry the action out and roll it back: what it would do, checked by the same code."""
    with transaction.atomic():
        outcome = segment_review(actor=actor, request=form)
        transaction.set_rollback(True)
    return outcome


@require_POST
def segment_action_view(request: HttpRequest) -> HttpResponse:
    """Show a review action for confirmation, or carry it out once confirmed (confirmed=yes)."""
    if not can_operate(request.user):
        return render(
            request,
            "console/forbidden.html",
            {"title": "Not allowed", "section": "segments", "can_operate": False},
            status=403,
        )
    form = ReviewRequest.from_post(request.POST)
    actor = Actor.of(request.user)
    try:
        if request.POST.get("confirmed") != "yes":
            outcome = _preview(actor, form)
            return _render(request, {**_base_context(request), "confirm": outcome, "form": form})
        outcome = segment_review(actor=actor, request=form)
    except SegmentError as exc:
        context = {**_page_context(request), "error": exc, "form": form}
        return _render(request, context, status=400)
    messages.success(request, " ".join(outcome.sentences()))
    return HttpResponseRedirect(reverse("console-segments"), status=303)
