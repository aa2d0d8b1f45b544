"""The SLA compliance page of the agent workspace (managers and admins), and its CSV and XLSX exports."""

from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.utils import timezone

from servicedesk.errors import InvalidInput
from servicedesk.exports import Column, csv_rows_response, export_format, export_refused, xlsx_response
from servicedesk.replica import replica_view
from servicedesk.workspace import agent_render, agent_required
from sla.models import ClockKind
from sla.reports import (
    GROUP_BY,
    KINDS,
    MAX_DAYS,
    Group,
    Report,
    ReportParamsError,
    breached_clocks,
    breached_rows,
    breached_stream,
    csv_lines,
    report_params,
    reports_allowed,
    sla_report,
)

PAGE_SIZE = 25


def csv_response(report: Report) -> StreamingHttpResponse:
    """The groups table, then every breached clock of the period, streamed as it is read (the kernel's streamed
    CSV; no byte order mark, as this CSV always was: the API serves it too)."""
    p = report.params
    return csv_rows_response(filename=f"sla-report-{p.group_by}-{p.date_from.isoformat()}-{p.date_to.isoformat()}",
                             lines=csv_lines(report), bom=False)


def _mins(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def _xlsx_groups(report: Report) -> tuple[list[Column], list]:
    """The groups table, one row per group then "All": per kind its counts, compliance (a percentage) and
    business minutes."""
    p = report.params
    columns = [Column(GROUP_BY[p.group_by], lambda g: g.label, width=24)]
    for kind in p.kinds:
        label = ClockKind(kind).label

        def figures(g, kind=kind):
            return g.figures[kind]

        columns += [
            Column(f"{label} stopped", lambda g, f=figures: f(g).stopped, "int"),
            Column(f"{label} met", lambda g, f=figures: f(g).met, "int"),
            Column(f"{label} breached", lambda g, f=figures: f(g).breached, "int"),
            Column(f"{label} compliance", lambda g, f=figures: f(g).compliance, "percent"),
            Column(f"{label} mean minutes", lambda g, f=figures: _mins(f(g).mean_seconds), "float"),
            Column(f"{label} p90 minutes", lambda g, f=figures: _mins(f(g).p90_seconds), "float"),
            Column(f"{label} open breached", lambda g, f=figures: f(g).open_breached, "int"),
        ]
    return columns, [*report.groups, Group(None, "All", report.totals)]


BREACHED_COLUMNS = [
    Column("Ticket type", lambda r: r.ticket_type, width=12),
    Column("Number", lambda r: r.number, width=12),
    Column("Clock", lambda r: r.kind, width=10),
    Column("State", lambda r: r.state, width=10),
    Column("Priority", lambda r: r.priority),
    Column("Team", lambda r: r.team, width=20),
    Column("Policy", lambda r: r.policy, width=24),
    Column("Due", lambda r: r.due_at, "datetime"),
    Column("Breached", lambda r: r.breached_at, "datetime"),
    Column("Stopped", lambda r: r.stopped_at, "datetime"),
]


def xlsx_report(report: Report):
    """The report as a workbook: the compliance table, then every breached clock on a second sheet."""
    p = report.params
    columns, groups = _xlsx_groups(report)
    return xlsx_response(
        filename=f"sla-report-{p.group_by}-{p.date_from.isoformat()}-{p.date_to.isoformat()}",
        sheets=[("Compliance", columns, groups), ("Breached clocks", BREACHED_COLUMNS, breached_stream(p))],
    )


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
@replica_view
def report_page(request):
    """Compliance per team, priority or policy over a period (default: the last 30 days by team), a chart of
    it drawn from a JSON block, the same figures as a table, and the breached tickets a page at a time."""
    if not reports_allowed(request.user):
        raise PermissionDenied("SLA reports are for managers and admins.")
    query = request.GET
    try:
        fmt = export_format(request, names=("export", "format"))  # ?format= is the older spelling
    except InvalidInput as error:
        return export_refused(error)
    context = {"group_choices": GROUP_BY.items(), "kind_choices": [(k, ClockKind(k).label) for k in KINDS],
               "max_days": MAX_DAYS, "form": query}
    try:
        params = report_params(query, defaults=True)
    except ReportParamsError as error:
        context["errors"] = error.errors
        return agent_render(request, "sla/report.html", context, current_nav="sla:report", status=400)
    report = sla_report(params)
    if fmt == "csv":
        return csv_response(report)
    if fmt == "xlsx":
        return xlsx_report(report)
    page = Paginator(breached_clocks(params), PAGE_SIZE).get_page(query.get("page"))
    rows, totals = _rows(report)
    context.update({
        "params": params, "report": report, "time_zone": timezone.get_current_timezone_name(), "rows": rows,
        "totals": totals, "chart": _chart(report),
        "kinds": [(k, ClockKind(k).label) for k in params.kinds], "page": page,
        "breached": breached_rows(page.object_list),
        "form": {**params.query(), "kind": query.get("kind", "")},
        "csv_url": f"{request.path}?{urlencode({**params.query(), 'format': 'csv'})}",
        "xlsx_url": f"{request.path}?{urlencode({**params.query(), 'format': 'xlsx'})}",
    })
    return agent_render(request, "sla/report.html", context, current_nav="sla:report")
