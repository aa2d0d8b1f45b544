"""The service insights dashboard (/agent/insights/): headline tiles against the previous period, then a card per
chart (backlog, times, SLA, rates, satisfaction, incidents by service/source/category, workload), each with a
caption saying in words what it shows, its figures in a table one click away and CSV/XLSX exports of that table.

Reads only: the figures come from insights.dashboard.dashboard_data(scope), the scope (period, teams the viewer
may see, chosen team and service) from insights.scope.scope_for. A bad filter answers 400 naming the field.
"""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from insights.measures import format_value, hours_words
from insights.scope import ScopeError, insights_allowed, scope_for, teams_visible
from insights.types import Dashboard, Tile
from insights.views_subscriptions import subscription  # noqa: F401  (re-exported for insights/urls_agent.py)
from servicedesk.errors import InvalidInput
from servicedesk.exports import export_format, export_refused, export_response
from servicedesk.models import Service, Team
from servicedesk.replica import replica_view
from servicedesk.workspace import agent_render, agent_required

# The tables of insights.dashboard.dashboard_tables, in the order the page shows them.
TABLES = ("measures", "backlog", "times", "sla", "rates", "satisfaction", "comments", "by-service", "by-source",
          "categories", "workload")
QUICK_PERIODS = (("7", "Last 7 days"), ("30", "Last 30 days"), ("90", "Last 90 days"), ("quarter", "This quarter"))
RATES = (("fcr", "First-contact resolution", "incidents resolved at first contact and not reopened, of those "
                                              "raised by people and resolved"),
         ("reopen", "Reopen rate", "resolved incidents reopened, of incidents resolved"),
         ("deflection", "Self-service deflection", "suggested articles that solved the issue with no ticket, of "
                                                     "those followed up"),
         ("automation", "Automation", "requests fulfilled with no human step, of requests fulfilled"))


def _allowed(request) -> None:
    if not insights_allowed(request.user):
        raise PermissionDenied("Service insights are for agents, managers and admins.")


# --- words ------------------------------------------------------------------------------------------------

def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


def _list_words(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1] if parts else ""


# --- the page ---------------------------------------------------------------------------------------------

def _quick_periods(query, today: date) -> list[dict]:
    """Links of the quick periods, keeping the chosen team and service."""
    keep = {k: query[k] for k in ("team", "service") if query.get(k)}
    links = []
    for key, label in QUICK_PERIODS:
        if key == "quarter":
            start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        else:
            start = today - timedelta(days=int(key) - 1)
        values = {"from": start.isoformat(), "to": today.isoformat(), **keep}
        current = query.get("from", "") == values["from"] and query.get("to", "") == values["to"]
        links.append({"key": key, "label": label, "url": "?" + urlencode(values), "current": current})
    return links


def _tile(tile: Tile) -> dict:
    value, previous = tile.value, tile.previous
    direction = "" if value is None or previous is None else (
        "up" if value > previous + 1e-9 else "down" if value < previous - 1e-9 else "flat")
    return {"tile": tile, "key": tile.measure.key, "previous": format_value(tile.measure.key, previous),
            "direction": direction, "trend": tile.trend}


def _series_caption(d: Dashboard) -> dict[str, str]:
    """What each chart shows, in words with its key numbers: the canvases' text alternatives."""
    s, captions = d.scope, {}
    period = f"from {s.date_from:%-d %b} to {s.date_to:%-d %b %Y}"
    if d.backlog:
        opened, ended = sum(p.opened for p in d.backlog), sum(p.ended for p in d.backlog)
        peak = max(d.backlog, key=lambda p: p.backlog)
        captions["backlog"] = (
            f"Tickets opened (bars) and taken off the backlog (resolved, fulfilled, rejected or cancelled) per day "
            f"{period}, with the open backlog at the end of each day (line): {opened:,} opened, {ended:,} ended; "
            f"the backlog went from {d.backlog[0].backlog:,} to {d.backlog[-1].backlog:,}, at most {peak.backlog:,} "
            f"on {peak.day:%-d %b}.")
    for which, label in (("resolve", "resolve"), ("respond", "first respond to")):
        rows = [r for r in d.times if getattr(r, f"{which}_mean") is not None]
        if rows:
            parts = [f"{r.kind_label.lower()} {r.priority_label} {hours_words(getattr(r, f'{which}_mean'))} "
                     f"(90 % within {hours_words(getattr(r, f'{which}_p90'))})" for r in rows]
            captions[which] = (f"Mean and 90th-percentile time to {label} tickets by type and priority, {period}: "
                               + _list_words(parts) + ".")
    points = [p for p in d.sla if p.compliance is not None]
    if points:
        met, breached = sum(p.met for p in d.sla), sum(p.breached for p in d.sla)
        total = round(100 * met / (met + breached), 1)
        low = min(points, key=lambda p: p.compliance)
        captions["sla"] = (
            f"Share of SLA clocks that met their target, per {d.sla_bucket} {period}: {total:.1f} % overall "
            f"({met:,} met, {breached:,} breached), lowest {low.compliance:.1f} % "
            f"({'week of ' if d.sla_bucket == 'week' else ''}{low.day:%-d %b}).")
    rates = [(label, getattr(d, key)) for key, label, _ in RATES]
    if any(r.denominator for _, r in rates):
        captions["rates"] = "Four rates of the period, in per cent: " + _list_words(
            [f"{label.lower()} {_percent(r.percent)} ({r.numerator:,} of {r.denominator:,})" if r.denominator
             else f"{label.lower()} not measured" for label, r in rates]) + "."
    sat = d.satisfaction
    if sat.rated:
        captions["satisfaction"] = (
            f"How {sat.rated:,} requester rating{'s' if sat.rated != 1 else ''} of the period spread from 1 (very "
            f"dissatisfied) to 5 (very satisfied), average {sat.average:.2f} / 5: "
            + _list_words([f"{n:,} gave {score}" for score, n in enumerate(sat.distribution, 1)]) + ".")
    for key, rows, what in (("by_service", d.by_service, "Incidents opened per service"),
                            ("categories", d.categories, "The most frequent incident categories")):
        if rows:
            captions[key] = f"{what} {period}: " + _list_words(
                [f"{r.label} {r.opened:,}" for r in rows[:6]]) + (", and others" if len(rows) > 6 else "") + "."
    if d.by_source and sum(r.opened for r in d.by_source):
        total = sum(r.opened for r in d.by_source)
        captions["by_source"] = f"Where the period's {total:,} incidents came from: " + _list_words(
            [f"{r.label.lower()} {r.opened:,} ({100 * r.opened / total:.0f} %)" for r in d.by_source]) + "."
        monitoring = d.extras.get("monitoring")
        if monitoring is not None and monitoring.denominator:
            captions["by_source"] += (f" Monitoring raised {monitoring.percent:.1f} % of them, people the rest "
                                      f"({monitoring.numerator:,} of {monitoring.denominator:,}).")
    if d.workload:
        captions["workload"] = (
            "Tickets assigned to each agent now and not yet ended (open), and those they resolved in the period: "
            + _list_words([f"{r.name} {r.open_now:,} open, {r.resolved:,} resolved" for r in d.workload[:6]])
            + (", and others" if len(d.workload) > 6 else "") + ".")
    return captions


def _charts(d: Dashboard) -> dict:
    """What static/js/insights.js draws (hours as floats, rates as per cent, null where nothing was measured)."""
    times_labels = [f"{r.kind_label} {r.priority_label}" for r in d.times]
    resp = [r for r in d.times if r.kind == "incident" or r.respond_mean is not None]
    return {
        "backlog": {"labels": [p.day.isoformat() for p in d.backlog], "opened": [p.opened for p in d.backlog],
                    "ended": [p.ended for p in d.backlog], "backlog": [p.backlog for p in d.backlog]},
        "resolve": {"labels": times_labels, "mean": [r.resolve_mean for r in d.times],
                    "p90": [r.resolve_p90 for r in d.times]},
        "respond": {"labels": [f"{r.kind_label} {r.priority_label}" for r in resp],
                    "mean": [r.respond_mean for r in resp], "p90": [r.respond_p90 for r in resp]},
        "sla": {"labels": [p.day.isoformat() for p in d.sla], "values": [p.compliance for p in d.sla],
                "bucket": d.sla_bucket},
        "rates": {"labels": [label for _, label, _ in RATES],
                  "values": [getattr(d, key).percent for key, _, _ in RATES]},
        "satisfaction": {"labels": ["1", "2", "3", "4", "5"], "values": list(d.satisfaction.distribution)},
        "by_service": {"labels": [r.label for r in d.by_service], "opened": [r.opened for r in d.by_service],
                       "resolved": [r.resolved for r in d.by_service]},
        "by_source": {"labels": [r.label for r in d.by_source], "values": [r.opened for r in d.by_source]},
        "categories": {"labels": [r.label for r in d.categories], "values": [r.opened for r in d.categories]},
        "workload": {"labels": [r.name for r in d.workload], "open": [r.open_now for r in d.workload],
                     "resolved": [r.resolved for r in d.workload]},
    }


def _exports(d: Dashboard) -> dict[str, dict[str, str]]:
    query = d.scope.query()
    base = {slug: reverse("agent:insights_export", args=[slug]) for slug in TABLES}
    return {slug.replace("-", "_"): {fmt: f"{url}?{urlencode({**query, 'export': fmt})}" for fmt in ("csv", "xlsx")}
            for slug, url in base.items()}


def _subscription_when() -> str:
    """When the dashboard's "Email me this weekly" sends a new subscription: the form's default day and hour (an
    existing subscription keeps its own)."""
    from insights.forms import SubscriptionForm
    from insights.subscriptions import WEEKDAYS

    fields = SubscriptionForm.base_fields
    return f"every {WEEKDAYS[int(fields['weekday'].initial)]} at {int(fields['hour'].initial):02d}:00"


def render_dashboard(request, d: Dashboard | None, *, errors: dict | None = None, status: int = 200):
    """The page for a built Dashboard (or, with `errors`, the filters and what is wrong with them)."""
    visible = teams_visible(request.user)
    teams = list(Team.objects.order_by("name").only("id", "name")) if visible is None else visible
    query = request.GET if errors or d is None else {**request.GET.dict(), **d.scope.query()}
    context = {
        "d": d, "errors": errors or {}, "form": query,
        "teams": teams, "all_teams_label": "All teams" if visible is None else "All my teams",
        "services": list(Service.objects.order_by("name").only("id", "name")),
        "quick_periods": _quick_periods(query, timezone.localdate()),
    }
    if d is not None:
        times_rows = [{"row": r, "resolve_mean": hours_words(r.resolve_mean), "resolve_p90": hours_words(r.resolve_p90),
                       "respond_mean": hours_words(r.respond_mean), "respond_p90": hours_words(r.respond_p90)}
                      for r in d.times]
        sat = d.satisfaction
        helps = {t.measure.key: t.measure.help for t in d.tiles}
        context.update({
            "tiles": [_tile(t) for t in d.tiles], "charts": _charts(d), "captions": _series_caption(d),
            "exports": _exports(d), "times_rows": times_rows,
            "rates": [{"key": key, "label": label, "help": helps.get(f"{key}_rate") or help_, "rate": getattr(d, key),
                       "percent": _percent(getattr(d, key).percent)} for key, label, help_ in RATES],
            "sat_rows": [{"score": score, "count": n,
                          "share": _percent(round(100 * n / sat.rated, 1) if sat.rated else None)}
                         for score, n in enumerate(sat.distribution, 1)],
            "source_total": sum(r.opened for r in d.by_source),
            "workload_open": sum(r.open_now for r in d.workload),
            "workload_resolved": sum(r.resolved for r in d.workload),
            "subscription_query": d.scope.query(),
            "subscription_when": _subscription_when(),
        })
    return agent_render(request, "insights/dashboard.html", context, current_nav="insights:dashboard",
                        status=status)


@agent_required
@require_GET
@replica_view
def dashboard(request):
    """The manager dashboard for the period, team and service of the query string (default: the last 30 days,
    every team the viewer may see, every service)."""
    _allowed(request)
    try:
        scope = scope_for(request.user, request.GET)
    except ScopeError as error:
        return render_dashboard(request, None, errors=error.errors, status=400)
    from insights.dashboard import dashboard_data

    return render_dashboard(request, dashboard_data(scope))


@agent_required
@require_GET
@replica_view
def export_table(request, table: str):
    """One table of the dashboard (`table`: a slug of TABLES) as CSV or XLSX (?export=csv|xlsx, CSV by default),
    for the same scope and with the same permission as the page."""
    _allowed(request)
    if table not in TABLES:
        raise Http404(f"No dashboard table {table!r}.")
    try:
        scope = scope_for(request.user, request.GET)
    except ScopeError as error:
        return HttpResponse("".join(f"{k}: {v}\n" for k, v in error.errors.items()), status=400,
                            content_type="text/plain; charset=utf-8")
    try:
        fmt = export_format(request) or "csv"
    except InvalidInput as error:
        return export_refused(error)
    from insights.dashboard import dashboard_data, dashboard_tables

    tables = dashboard_tables(dashboard_data(scope))
    if table not in tables:
        raise Http404(f"No dashboard table {table!r}.")
    chosen = tables[table]
    return export_response(filename=f"insights-{table}-{scope.date_from.isoformat()}-{scope.date_to.isoformat()}",
                           fmt=fmt, columns=chosen.columns, rows=chosen.rows, sheet=chosen.title[:31])
