"""The audit log: every change, filterable, before → after, the evidence behind automatic
decisions; the same rows as CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime, time
from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_date

from console.context import page_context
from rollout.models import AuditEntry
from rollout.selectors import audit_choices, audit_entries

PAGE_SIZE = 100
FILTERS = ("flag", "environment", "segment", "actor", "action")


class _Echo:
    """A file-like object whose write returns the line, for streaming CSV."""

    def write(self, value: str) -> str:
        return value


def _day(value: str, end: bool = False) -> datetime | None:
    day = parse_date(value) if value else None
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day, time.max if end else time.min))


def filtered_entries(params: Any) -> tuple[QuerySet[AuditEntry], dict[str, str], list[str]]:
    """The entries matching the query's filters, the filters as given, and any problems."""
    given = {name: str(params.get(name, "")).strip() for name in (*FILTERS, "since", "until")}
    problems = []
    moments: dict[str, datetime | None] = {}
    for name, end in (("since", False), ("until", True)):
        moments[name] = _day(given[name], end) if given[name] else None
        if given[name] and moments[name] is None:
            problems.append(f"{name}: not a date (YYYY-MM-DD)")
    entries = audit_entries(
        flag=given["flag"],
        environment=given["environment"],
        segment=given["segment"],
        actor=given["actor"],
        action=given["action"],
        since=moments["since"],
        until=moments["until"],
    )
    return entries, given, problems


def _changes(entry: AuditEntry) -> list[tuple[str, Any, Any]]:
    keys = sorted(set(entry.before) | set(entry.after))
    return [
        (key, entry.before.get(key), entry.after.get(key))
        for key in keys
        if entry.before.get(key) != entry.after.get(key)
    ]


def audit_page(request: HttpRequest) -> HttpResponse:
    entries, given, problems = filtered_entries(request.GET)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"entry": entry, "changes": _changes(entry)} for entry in page.object_list]
    choices = audit_choices()
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "console/audit.html",
        page_context(request)
        | {
            "title": "Audit log",
            "section": "audit",
            "rows": rows,
            "page": page,
            "given": given,
            "problems": problems,
            "query": query.urlencode(),
            **choices,
        },
        status=400 if problems else 200,
    )


# A cell that starts with one of these is a formula to Excel, LibreOffice and Sheets
# (OWASP "CSV injection"): `=HYPERLINK(…)` in a reason would run when the export is opened.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """`text` as a spreadsheet shows it, never as a formula: a leading quote makes it text."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_rows(entries: QuerySet[AuditEntry]) -> Iterator[list[str]]:
    yield [
        "at",
        "actor",
        "action",
        "environment",
        "flag",
        "segment",
        "before",
        "after",
        "reason",
        "evidence",
    ]
    for entry in entries.iterator(chunk_size=1000):
        yield [
            csv_cell(cell)
            for cell in (
                entry.at.isoformat(),
                entry.actor_name,
                entry.action,
                entry.environment,
                entry.flag,
                entry.segment,
                json.dumps(entry.before, sort_keys=True),
                json.dumps(entry.after, sort_keys=True),
                entry.reason,
                json.dumps(entry.evidence, sort_keys=True) if entry.evidence else "",
            )
        ]


def audit_csv(request: HttpRequest) -> HttpResponseBase:
    entries, _, problems = filtered_entries(request.GET)
    if problems:
        return HttpResponse("; ".join(problems), status=400, content_type="text/plain")
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in _csv_rows(entries)), content_type="text/csv"
    )
    response["Content-Disposition"] = 'attachment; filename="edgeflags-audit.csv"'
    return response
