"""The event console in the agent workspace (/agent/monitoring/): the live alerts table (htmx polls only the
table fragment), an alert's page with its latest events and their raw payloads, acknowledge and link to an
incident (POST; htmx swaps the row, without JavaScript the page is redirected), and the KPI page.

Reads go through monitoring.selectors / monitoring.kpis, writes through monitoring.services. A refused write
says why, naming the field, and changes nothing."""

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from monitoring import kpis as kpi
from monitoring import services
from monitoring.models import Alert, EventSource, Severity
from monitoring.selectors import (
    STATES,
    ConsoleParams,
    ConsoleParamsError,
    alerts_for,
    alerts_of_incident,
    console_alerts,
    console_counts,
    console_params,
)
from servicedesk.errors import DomainError, InvalidInput
from servicedesk.exports import (
    Column,
    export_format,
    export_links,
    export_refused,
    export_response,
    person_name,
    rows_of,
)
from servicedesk.models import Service
from servicedesk.registry import NavItem, TicketBrief
from servicedesk.sidebar import sidebar_counts
from servicedesk.workspace import agent_render, agent_required, safe_next

PAGE_SIZE = 50
EVENTS_SHOWN = 50
POLL_SECONDS = 7
ALERTS_IN_PANEL = 20


def _console_context(request, params: ConsoleParams) -> dict:
    page = Paginator(console_alerts(request.user, params), PAGE_SIZE).get_page(request.GET.get("page"))
    query = params.query()
    if page.number > 1:
        query["page"] = page.number
    return {"params": params, "page": page, "alerts": list(page.object_list),
            "poll_url": f"{reverse('agent:monitoring_table')}?{urlencode(query, doseq=True)}",
            "poll_seconds": POLL_SECONDS, "refreshed_at": timezone.now(), "state_label": STATES[params.state][0]}


def _params_or_errors(request) -> tuple[ConsoleParams, dict]:
    try:
        return console_params(request.GET), {}
    except ConsoleParamsError as error:
        return ConsoleParams(), error.errors


_SEVERITY = dict(Severity.choices)
_ALERT_STATUS = dict(Alert.Status.choices)
EXPORT_COLUMNS = [
    Column("Severity", lambda a: _SEVERITY.get(a.severity, a.severity), width=10),
    Column("Status", lambda a: _ALERT_STATUS.get(a.status, a.status), width=10),
    Column("Summary", lambda a: a.summary, width=50),
    Column("Source", lambda a: a.source.name, width=16),
    Column("Service", lambda a: a.service.name if a.service else "", width=20),
    Column("Configuration item", lambda a: a.configuration_item.name if a.configuration_item else "", width=20),
    Column("Incident", lambda a: a.incident.number if a.incident else "", width=12),
    Column("Events", lambda a: a.count, "int"),
    Column("Flapping", lambda a: "yes" if a.flapping else "", width=9),
    Column("First seen", lambda a: a.first_seen, "datetime"),
    Column("Last seen", lambda a: a.last_seen, "datetime"),
    Column("Cleared", lambda a: a.cleared_at, "datetime"),
    Column("Acknowledged", lambda a: a.acknowledged_at, "datetime"),
    Column("Acknowledged by", lambda a: person_name(a.acknowledged_by), width=18),
]


def _export(request, params: ConsoleParams, fmt: str):
    """Every alert the console's filters select, in its order (the page shows PAGE_SIZE at a time)."""
    alerts = console_alerts(request.user, params).defer("description", "labels", "changes")
    return export_response(filename=f"alerts-{params.state}-{timezone.localdate().isoformat()}", fmt=fmt,
                           columns=EXPORT_COLUMNS, rows=rows_of(alerts), sheet=STATES[params.state][0])


@agent_required
@require_GET
def console(request):
    """The event console: filters, then the live table (which polls itself every few seconds); with
    ?export=csv|xlsx every alert of the filtered view as a download."""
    try:
        fmt = export_format(request)
    except InvalidInput as exc:
        return export_refused(exc)
    params, errors = _params_or_errors(request)
    if fmt and not errors:
        return _export(request, params, fmt)
    context = _console_context(request, params)
    context["export"] = export_links(request.path, params.query())
    context.update({
        "errors": errors, "form": request.GET, "states": [(key, label) for key, (label, _) in STATES.items()],
        "severities": Severity.choices,
        # Only services and sources that have live alerts are worth offering as filters.
        "services": list(Service.objects.filter(Q(alerts__live=True) | Q(id=params.service or 0)).distinct()
                         .order_by("name").only("id", "name")),
        "sources": list(EventSource.objects.order_by("name").only("id", "name")),
    })
    nav = "monitoring:unacknowledged" if params.state == "unacknowledged" else "monitoring:console"
    return agent_render(request, "monitoring/console.html", context, current_nav=nav, status=400 if errors else 200)


@agent_required
@require_GET
def console_table(request):
    """The table fragment alone: what the console's polling swaps in."""
    params, errors = _params_or_errors(request)
    if errors:
        return render(request, "monitoring/_console_table.html", {"errors": errors}, status=400)
    return render(request, "monitoring/_console_table.html", _console_context(request, params))


def _alert_or_404(request, alert_id: int) -> Alert:
    alert = alerts_for(request.user).filter(id=alert_id).first()
    if alert is None:
        raise Http404("No such alert")
    return alert


def _pretty(raw) -> str:
    return json.dumps(raw, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@agent_required
@require_GET
def alert_page(request, alert_id: int):
    """One alert: what it is, where it comes from, its incident, and its latest events with their raw payload."""
    alert = _alert_or_404(request, alert_id)
    events = list(alert.events.order_by("-received_at", "-id")
                  .only("id", "received_at", "occurred_at", "status", "severity", "summary", "outcome", "raw",
                        "external_id", "alert_id")[:EVENTS_SHOWN])
    for event in events:
        event.pretty = _pretty(event.raw)
    return agent_render(request, "monitoring/alert.html", {
        "alert": alert, "events": events, "events_shown": EVENTS_SHOWN,
        "labels": sorted((alert.labels or {}).items()),
    }, current_nav="monitoring:console")


def _row_response(request, alert_id: int, *, error: str = "", status: int = 200, typed: str = ""):
    alert = _alert_or_404(request, alert_id)
    return render(request, "monitoring/_alert_row.html",
                  {"alert": alert, "row_error": error, "typed": typed, "next": request.POST.get("next", "")},
                  status=status)


@agent_required
@require_POST
def acknowledge(request, alert_id: int):
    alert = _alert_or_404(request, alert_id)
    try:
        services.alert_acknowledge(alert_id=alert.id, actor=request.user)
    except DomainError as exc:
        if request.htmx:
            return _row_response(request, alert.id, error=exc.message, status=exc.status_code)
        messages.error(request, exc.message)
    else:
        if not request.htmx:
            messages.success(request, f"Alert acknowledged: {alert.summary}")
    if request.htmx:
        return _row_response(request, alert.id)
    return redirect(safe_next(request, reverse("agent:monitoring_alert", args=[alert.id])))


@agent_required
@require_POST
def link_incident(request, alert_id: int):
    alert = _alert_or_404(request, alert_id)
    typed = request.POST.get("incident", "")
    try:
        linked = services.alert_link_incident(alert_id=alert.id, incident_number=typed, actor=request.user)
    except DomainError as exc:
        if request.htmx:
            return _row_response(request, alert.id, error=exc.message, status=exc.status_code, typed=typed)
        messages.error(request, exc.message)
        return redirect(safe_next(request, reverse("agent:monitoring_alert", args=[alert.id])))
    if request.htmx:
        return _row_response(request, alert.id)
    number = alerts_for(request.user).filter(id=linked.id).values_list("incident__number", flat=True).first()
    messages.success(request, f"Alert linked to {number}.")
    return redirect(safe_next(request, reverse("agent:monitoring_alert", args=[alert.id])))


def _chart_events(data: dict) -> dict:
    fmt = {"minute": "%H:%M", "hour": "%d %b %H:00", "day": "%d %b"}[data["bucket"]]
    return {"labels": [timezone.localtime(p["at"]).strftime(fmt) for p in data["points"]],
            "values": [p["per_minute"] for p in data["points"]]}


@agent_required
@require_GET
def kpis_page(request):
    """Events per minute, open alerts by severity, noise reduction, MTTA and MTTR for a chosen period; each
    chart has its figures in a table one click away, and a caption saying what it shows."""
    try:
        period = kpi.period_of(request.GET.get("period"))
        errors = {}
    except ValueError as error:
        period, errors = kpi.PERIODS[kpi.DEFAULT_PERIOD], {"period": str(error).split(": ", 1)[1]}
    figures = kpi.kpis(period)
    noise, times, open_now = figures["noise"], figures["times"], figures["open"]
    charts = {
        "events": _chart_events(figures["events"]),
        "open": {"labels": [row["label"] for row in open_now["by_severity"]],
                 "values": [row["count"] for row in open_now["by_severity"]]},
        "noise": {"labels": ["Events", "Alerts", "Incidents"],
                  "values": [noise["events"], noise["alerts"], noise["incidents"]]},
        "times": {"labels": ["All"] + [row["label"] for row in times["by_severity"]],
                  "mtta": [times["overall"]["mtta_minutes"]] + [r["mtta_minutes"] for r in times["by_severity"]],
                  "mttr": [times["overall"]["mttr_minutes"]] + [r["mttr_minutes"] for r in times["by_severity"]]},
    }
    return agent_render(request, "monitoring/kpis.html", {
        "k": figures, "period": period, "periods": kpi.PERIODS.values(), "errors": errors, "charts": charts,
    }, current_nav="monitoring:kpis", status=400 if errors else 200)


# --- what the console registers (monitoring.plugin) ----------------------------------------------------------


def console_nav(request, current: str) -> list[NavItem]:
    """The workspace's "Monitoring" links: the console with the firing count, the unacknowledged ones (red
    while any), and the KPIs; both counts in one aggregate query."""
    # The same for every agent: counted once for the desk (servicedesk.sidebar).
    counts = sidebar_counts(request, "monitoring", lambda: console_counts(request.user), shared=True)
    url = reverse("agent:monitoring_console")
    return [
        NavItem("Event console", url, "i-zap", count=counts["firing"], current=current == "monitoring:console",
                testid="nav-monitoring-console"),
        NavItem("Unacknowledged", f"{url}?state=unacknowledged", "i-alert", count=counts["unacknowledged"],
                hot=bool(counts["unacknowledged"]), current=current == "monitoring:unacknowledged",
                testid="nav-monitoring-unacknowledged"),
        NavItem("Monitoring KPIs", reverse("agent:monitoring_kpis"), "i-layers", current=current == "monitoring:kpis",
                testid="nav-monitoring-kpis"),
    ]


def alerts_panel(request, ticket: TicketBrief) -> dict | None:
    """The incident page's "Alerts" card: its alerts, firing first (one query); left out when it has none."""
    alerts = alerts_of_incident(request.user, ticket.number, limit=ALERTS_IN_PANEL + 1)
    if not alerts:
        return None
    shown = alerts[:ALERTS_IN_PANEL]
    return {"ticket": ticket, "alerts": shown, "more": len(alerts) > ALERTS_IN_PANEL,
            "firing": sum(1 for a in shown if a.status == Alert.Status.FIRING)}
