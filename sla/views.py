"""The SLA compliance page of the agent workspace (managers and admins), and its CSV export."""

import csv
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.utils import timezone

from servicedesk.workspace import agent_render, agent_required
from sla.models import ClockKind
from sla.reports import (
    GROUP_BY,
    KINDS,
    MAX_DAYS,
    Report,
    ReportParamsError,
    breached_clocks,
    breached_rows,
    csv_lines,
    report_params,
    reports_allowed,
    sla_report,
)

PAGE_SIZE = 25


class _Echo:
    """csv.writer writes each row to this, which hands it back for streaming."""

    def write(self, value: str) -> str:
        return value


def csv_response(report: Report) -> StreamingHttpResponse:
    """The groups table, then every breached clock of the period, streamed as it is read."""
    writer = csv.writer(_Echo())
    p = report.params
    response = StreamingHttpResponse((writer.writerow(row) for row in csv_lines(report)),
                                     content_type="text/csv; charset=utf-8")
    name = f"sla-report-{p.group_by}-{p.date_from.isoformat()}-{p.date_to.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def duration_words(seconds: float | None) -> str:
    """Business time as people say it: "45 min", "3 h 20 min", "2 h"; "–" without a figure."""
    if seconds is None:
        return "–"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _chart(report: Report) -> dict:
    """What static/js/sla_report.js draws: compliance per group for each kind (null where nothing stopped)."""
    return {
        "labels": [g.label for g in report.groups],
        "series": [{"kind": kind, "label": ClockKind(kind).label,
                    "values": [g.figures[kind].compliance for g in report.groups]} for kind in report.params.kinds],
    }


def _rows(report: Report) -> tuple[list[dict], list[dict]]:
    rows = []
    for group in report.groups:
        cells = []
        for kind in report.params.kinds:
            f = group.figures[kind]
            cells.append({"kind": kind, "f": f, "mean": duration_words(f.mean_seconds),
                          "p90": duration_words(f.p90_seconds)})
        rows.append({"label": group.label, "cells": cells})
    totals = [{"kind": kind, "f": f, "mean": duration_words(f.mean_seconds), "p90": duration_words(f.p90_seconds)}
              for kind, f in report.totals.items()]
    return rows, totals


@agent_required
def report_page(request):
    """Compliance per team, priority or policy over a period (default: the last 30 days by team), a chart of
    it drawn from a JSON block, the same figures as a table, and the breached tickets a page at a time."""
    if not reports_allowed(request.user):
        raise PermissionDenied("SLA reports are for managers and admins.")
    query = request.GET
    context = {"group_choices": GROUP_BY.items(), "kind_choices": [(k, ClockKind(k).label) for k in KINDS],
               "max_days": MAX_DAYS, "form": query}
    try:
        params = report_params(query, defaults=True)
    except ReportParamsError as error:
        context["errors"] = error.errors
        return agent_render(request, "sla/report.html", context, current_nav="sla:report", status=400)
    report = sla_report(params)
    if query.get("format") == "csv":
        return csv_response(report)
    page = Paginator(breached_clocks(params), PAGE_SIZE).get_page(query.get("page"))
    rows, totals = _rows(report)
    context.update({
        "params": params, "report": report, "time_zone": timezone.get_current_timezone_name(), "rows": rows, "totals": totals, "chart": _chart(report),
        "kinds": [(k, ClockKind(k).label) for k in params.kinds], "page": page,
        "breached": breached_rows(page.object_list),
        "form": {**params.query(), "kind": query.get("kind", "")},
        "csv_url": f"{request.path}?{urlencode({**params.query(), 'format': 'csv'})}",
    })
    return agent_render(request, "sla/report.html", context, current_nav="sla:report")
