"""Model health: per segment × rung × model version of one flag and environment, the metrics
that matter for an edge feature, the cost ledger, charts over time and a CSV export.

"Is v3 worth it on mid-range phones?" is answered by one row per (segment, rung, version):
energy per inference, inference p50/p95, acceptance, feedback, crash rate, freshness,
partial-update success and bytes saved by deltas, and what running on the device saved
against the flag's cloud price (docs/edge-models.md, "The metrics that matter").
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from console.audit import csv_cell
from console.context import page_context
from console.overview import selected_environment
from console.svg import Series, line_chart
from rollout.histogram import percentile
from rollout.models import FlagState, Rung
from rollout.selectors import flag_state_of, model_health_sums, model_sizes, segment_keys

DAYS = (1, 7, 30, 90)
DEFAULT_DAYS = 7
CSV_COLUMNS = (
    "segment",
    "rung",
    "runs_on",
    "model_version",
    "clients",
    "inferences",
    "energy_mj_per_inference",
    "inference_p50_ms",
    "inference_p95_ms",
    "acceptance_rate",
    "feedback",
    "crash_rate",
    "freshness_hours",
    "delta_updates",
    "delta_success_rate",
    "full_updates",
    "bytes_saved_by_deltas",
    "cloud_cost_avoided",
    "cloud_cost",
)


def _ratio(top: Any, bottom: Any) -> float | None:
    return float(top or 0) / float(bottom) if bottom else None


@dataclass(frozen=True)
class HealthRow:
    segment: str
    rung: str
    runs_on: str
    model_version: str
    clients: int
    inferences: int
    energy_mj: float | None
    p50_ms: float | None
    p95_ms: float | None
    acceptance: float | None
    feedback: float | None
    crash_rate: float | None
    freshness_hours: float | None
    delta_updates: int
    delta_success: float | None
    full_updates: int
    bytes_saved: int | None
    cost_avoided: float | None  # on-device inferences priced at the cloud rung's price
    cloud_cost: float | None  # the cloud rung's own inferences at that price

    def csv(self) -> list[str]:
        values = (
            self.segment,
            self.rung,
            self.runs_on,
            self.model_version,
            self.clients,
            self.inferences,
            self.energy_mj,
            self.p50_ms,
            self.p95_ms,
            self.acceptance,
            self.feedback,
            self.crash_rate,
            self.freshness_hours,
            self.delta_updates,
            self.delta_success,
            self.full_updates,
            self.bytes_saved,
            self.cost_avoided,
            self.cloud_cost,
        )
        return [csv_cell("" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)))
                for v in values]  # fmt: skip


def _row(
    sums: dict[str, Any],
    segment: str,
    runs_on: str,
    price: float | None,
    sizes: dict[str, int],
) -> HealthRow:
    inferences = int(sums["inference_ms_n"] or 0)
    deltas = int(sums["updates_delta"] or 0)
    ok_deltas = deltas - int(sums["updates_delta_failed"] or 0)
    size = sizes.get(sums["model_version"])
    saved = None
    if deltas and size is not None:
        saved = ok_deltas * size - int(sums["update_bytes_delta"] or 0)
    priced = (inferences / 1000 * price) if price is not None else None
    return HealthRow(
        segment=segment,
        rung=sums["rung"],
        runs_on=runs_on,
        model_version=sums["model_version"],
        clients=int(sums["clients"] or 0),
        inferences=inferences,
        energy_mj=_ratio(sums["energy_sum"], sums["energy_n"]),
        p50_ms=percentile(sums, 0.5),
        p95_ms=percentile(sums, 0.95),
        acceptance=_ratio(sums["acceptance_sum"], sums["acceptance_n"]),
        feedback=_ratio(sums["rating_sum"], sums["rating_n"]),
        crash_rate=_ratio(sums["failures"], sums["clients"]),
        freshness_hours=_ratio(sums["freshness_sum"], sums["freshness_n"]),
        delta_updates=deltas,
        delta_success=_ratio(ok_deltas, deltas),
        full_updates=int(sums["updates_full"] or 0),
        bytes_saved=saved,
        cost_avoided=priced if runs_on == Rung.RunsOn.DEVICE else None,
        cloud_cost=priced if runs_on == Rung.RunsOn.CLOUD else None,
    )


def _label(rung: str, version: str) -> str:
    return f"{rung} {version}".strip()


def _charts(
    by_day: list[dict[str, Any]], runs_on: dict[str, str], price: float | None
) -> list[Any]:
    """Acceptance and energy per (rung, version) by day, and the cost ledger by day."""
    days = sorted({row["day"] for row in by_day})
    if not days:
        return []
    x = {day: float(i) for i, day in enumerate(days)}
    acceptance: dict[str, list[tuple[float, float]]] = defaultdict(list)
    energy: dict[str, list[tuple[float, float]]] = defaultdict(list)
    avoided: dict[datetime, float] = defaultdict(float)
    spent: dict[datetime, float] = defaultdict(float)
    for row in by_day:
        label = _label(row["rung"], row["model_version"])
        if row["acceptance_n"]:
            acceptance[label].append((x[row["day"]], row["acceptance_sum"] / row["acceptance_n"]))
        if row["energy_n"]:
            energy[label].append((x[row["day"]], row["energy_sum"] / row["energy_n"]))
        if price is not None:
            cost = (row["inference_ms_n"] or 0) / 1000 * price
            where = runs_on.get(row["rung"])
            if where == Rung.RunsOn.DEVICE:
                avoided[row["day"]] += cost
            elif where == Rung.RunsOn.CLOUD:
                spent[row["day"]] += cost
    labels = (f"{days[0]:%Y-%m-%d}", f"{days[-1]:%Y-%m-%d}")
    classes = ("treatment", "control", "difference", "series-fourth")

    def series(data: dict[str, list[tuple[float, float]]]) -> list[Series]:
        return [
            Series(label, points, classes[i % len(classes)])
            for i, (label, points) in enumerate(sorted(data.items()))
        ]

    charts = [
        (
            "Acceptance rate by day",
            line_chart("Acceptance rate by day", series(acceptance), x_labels=labels),
        ),
        (
            "Energy per inference (mJ) by day",
            line_chart("Energy per inference (mJ) by day", series(energy), x_labels=labels),
        ),
    ]
    if price is not None:
        ledger: dict[str, list[tuple[float, float]]] = {
            "cloud cost avoided (on-device)": [(x[d], avoided.get(d, 0.0)) for d in days],
            "cloud rung's cost": [(x[d], spent.get(d, 0.0)) for d in days],
        }
        charts.append(
            (
                "Cost ledger by day",
                line_chart("Cost ledger by day", series(ledger), x_labels=labels, zero_line=True),
            )
        )
    return charts


def _context(request: HttpRequest, key: str) -> tuple[dict[str, Any], list[HealthRow]]:
    environment, environments = selected_environment(request)
    state: FlagState | None = flag_state_of(key, environment)
    if state is None:
        raise Http404(f"no flag {key!r} in this environment")
    try:
        days = int(request.GET.get("days", DEFAULT_DAYS))
    except ValueError:
        days = DEFAULT_DAYS
    days = days if days in DAYS else DEFAULT_DAYS
    until = timezone.now()
    since = until - timedelta(days=days)
    by_cell, by_day = model_health_sums(state, since, until)
    runs_on = {rung.key: rung.runs_on for rung in state.flag.rungs.all()}
    price_value: Decimal | None = state.flag.cloud_cost_per_1000
    price = float(price_value) if price_value is not None else None
    sizes = model_sizes(state.flag)
    keys = segment_keys()
    rows = [
        _row(
            sums,
            keys.get(sums["segment_identity"], f"segment-{sums['segment_identity']}"),
            runs_on.get(sums["rung"], "none"),
            price,
            sizes,
        )
        for sums in by_cell
    ]
    totals = {
        "avoided": sum(r.cost_avoided or 0.0 for r in rows) if price is not None else None,
        "spent": sum(r.cloud_cost or 0.0 for r in rows) if price is not None else None,
        "device_inferences": sum(r.inferences for r in rows if r.runs_on == "device"),
        "cloud_inferences": sum(r.inferences for r in rows if r.runs_on == "cloud"),
    }
    context = page_context(
        request,
        title=f"Model health: {state.flag.key} in {state.environment.key}",
        section="overview",
    ) | {
        "state": state,
        "flag": state.flag,
        "environment": state.environment,
        "environments": environments,
        "rows": rows,
        "days": days,
        "day_choices": DAYS,
        "price": price_value,
        "totals": totals,
        "charts": _charts(by_day, runs_on, price),
    }
    return context, rows


def model_health_page(request: HttpRequest, key: str) -> HttpResponse:
    context, rows = _context(request, key)
    if request.GET.get("export") == "csv":
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = (
            f'attachment; filename="edgeflags-model-health-{context["environment"].key}.csv"'
        )
        writer = csv.writer(response)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow(row.csv())
        return response
    return render(request, "console/model_health.html", context)
