"""The measures the desk tracks, over a Scope: what the dashboard's tiles, the improvement register's before /
after and the weekly e-mail show.

Counts, rates, satisfaction and SLA compliance are sums over the daily rollup (insights.rollup) in one
aggregate query (SUM ... FILTER (WHERE kind = ...)); the backlog is the rollup's opened minus ended up to the
period's end. Times to respond and resolve are read from the incidents themselves, exactly: the mean and
PostgreSQL's percentile_cont over the rows of the period (an index range on resolved_at / first_responded_at),
so a 90th percentile is never an average of daily percentiles. On SQLite (the local run), which has no
percentile_cont, the same interpolation runs over the durations read in one ordered query
(servicedesk.aggregates).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, Sum

from incidents.models import Incident
from insights.models import DailyRollup, RollupKind
from insights.rollup import COUNTERS, INCIDENT_DONE, REQUEST_DELIVERED
from insights.types import Measure, Rate, Scope
from requests_app.models import ServiceRequest
from servicedesk.aggregates import PercentileCont, percentile_cont

MEASURES: dict[str, Measure] = {m.key: m for m in [
    Measure("opened", "Tickets opened", "count", "", "Incidents and service requests raised in the period."),
    Measure("resolved", "Tickets resolved", "count", "",
            "Incidents resolved and service requests fulfilled in the period."),
    Measure("backlog", "Backlog at the end", "count", "lower",
            "Incidents and service requests still open at the end of the period's last day."),
    Measure("respond_mean", "Mean time to respond", "hours", "lower",
            "Incidents: from raised to the first public reply of an agent, over the first replies given in the "
            "period (calendar time)."),
    Measure("respond_p90", "90th percentile time to respond", "hours", "lower",
            "Nine in ten first replies of the period came at least this fast."),
    Measure("resolve_mean", "Mean time to resolve", "hours", "lower",
            "Incidents: from raised to resolved, over the incidents resolved in the period (calendar time)."),
    Measure("resolve_p90", "90th percentile time to resolve", "hours", "lower",
            "Nine in ten incidents resolved in the period took at most this long."),
    Measure("sla_compliance", "SLA compliance", "percent", "higher",
            "SLA clocks (first response, resolution) met, of those that stopped in the period."),
    Measure("fcr_rate", "First-contact resolution", "percent", "higher",
            "Incidents raised by people and resolved in the period that were resolved straight from new and "
            "never reopened."),
    Measure("reopen_rate", "Reopen rate", "percent", "lower",
            "Incidents resolved in the period that had been reopened at least once."),
    Measure("csat_average", "Satisfaction", "score", "higher",
            "The requesters' average rating (1 to 5) of the tickets they rated in the period."),
    Measure("deflection_rate", "Self-service deflection", "percent", "higher",
            "On the portal, of the suggested articles that ended either way, the share that solved the issue "
            "with no ticket raised. Portal-wide: not split by team or service."),
    Measure("automation_rate", "Automation rate", "percent", "higher",
            "Service requests fulfilled in the period with no human step: no approval, delivered by the "
            "automated handler on its first run."),
    Measure("monitoring_share", "Raised by monitoring", "percent", "",
            "Incidents opened in the period by monitoring, of all incidents opened."),
]}


# --- formatting ------------------------------------------------------------------------------------------


def hours_words(hours: float | None) -> str:
    """"45 min", "3 h 20 min", "2 d 4 h"; "–" without a figure."""
    if hours is None:
        return "–"
    minutes = round(hours * 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        h, m = divmod(minutes, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(round(hours), 24)
    return f"{d} d {h} h" if h else f"{d} d"


def format_value(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    unit = MEASURES[key].unit
    if unit == "percent":
        return f"{value:.1f} %"
    if unit == "hours":
        return hours_words(value)
    if unit == "score":
        return f"{value:.2f} / 5"
    return f"{int(value):,}"


# --- the rollup's part -----------------------------------------------------------------------------------


def rollup_filter(scope: Scope, *, period: bool = True, portal: bool = True) -> Q:
    """The rollup rows of the scope: its days (unless `period` is False), its teams and service; portal rows
    (deflections, which have no team or service) are kept when `portal`."""
    q = Q(kind__in=(RollupKind.INCIDENT, RollupKind.REQUEST))
    if scope.team_ids is not None:
        q &= Q(team_id__in=scope.team_ids)
    if scope.service_id:
        q &= Q(service_id=scope.service_id)
    if portal:
        q |= Q(kind=RollupKind.PORTAL)
    if period:
        q &= Q(day__gte=scope.date_from, day__lte=scope.date_to)
    return q


INCIDENTS, REQUESTS = Q(kind=RollupKind.INCIDENT), Q(kind=RollupKind.REQUEST)


def rollup_totals(scope: Scope) -> dict[str, int]:
    """Every counter of the rollup summed over the scope, plus the per-type sums the rates need: one query."""
    sums = {f"sum_{c}": Sum(c) for c in COUNTERS}  # aliases may not shadow the columns they add up
    sums.update(sum_inc_opened=Sum("opened", filter=INCIDENTS), sum_inc_resolved=Sum("resolved", filter=INCIDENTS),
                sum_inc_people=Sum("resolved_people", filter=INCIDENTS),
                sum_req_resolved=Sum("resolved", filter=REQUESTS))
    row = DailyRollup.objects.filter(rollup_filter(scope)).aggregate(**sums)
    return {k.removeprefix("sum_"): (v or 0) for k, v in row.items()}


def backlog_before(scope: Scope, *, through) -> int:
    """Tickets of the scope still open at the end of day `through`: everything opened minus everything that
    ended, up to that day (one aggregate over the rollup's history)."""
    q = rollup_filter(scope, period=False, portal=False) & Q(day__lte=through)
    row = DailyRollup.objects.filter(q).aggregate(in_=Sum("opened"), out=Sum("ended"))
    return (row["in_"] or 0) - (row["out"] or 0)


def rates(t: dict[str, int]) -> dict[str, Rate]:
    return {
        "sla_compliance": Rate(t["sla_met"], t["sla_met"] + t["sla_breached"]),
        "fcr_rate": Rate(t["first_contact"], t["inc_people"]),
        "reopen_rate": Rate(t["reopened"], t["inc_resolved"]),
        "deflection_rate": Rate(t["deflected"], t["deflected"] + t["submitted_anyway"]),
        "automation_rate": Rate(t["automated"], t["req_resolved"]),
        "monitoring_share": Rate(t["opened_monitoring"], t["inc_opened"]),
    }


# --- times, from the tickets -----------------------------------------------------------------------------


def _hours(value) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value) / 1e6
    return round(seconds / 3600, 2)


def _duration(later: str, earlier: str = "created_at"):
    return ExpressionWrapper(F(later) - F(earlier), output_field=DurationField())


def _ticket_filter(scope: Scope, service_field: str | None) -> Q:
    q = Q()
    if scope.team_ids is not None:
        q &= Q(assignment_group_id__in=scope.team_ids)
    if scope.service_id:
        q &= Q(**{service_field: scope.service_id}) if service_field else Q(pk__in=[])
    return q


def time_figures(scope: Scope, *, by_priority: bool, sql_percentile: bool | None = None) -> dict:
    """Mean and 90th percentile (hours) of incidents' time to respond and resolve and requests' time to
    fulfil, over the scope: {(kind, priority or None): {resolved, resolve_mean, resolve_p90, responded,
    respond_mean, respond_p90}}. Two queries (one per ticket type); on SQLite (or with sql_percentile=False,
    which tests use to compare both ways) a few more for the percentiles."""
    start, end = scope.start, scope.end
    specs = [
        ("incident", Incident.objects.filter(_ticket_filter(scope, "service_id")),
         Q(status__in=INCIDENT_DONE, resolved_at__gte=start, resolved_at__lt=end), "resolved_at",
         Q(first_responded_at__gte=start, first_responded_at__lt=end), "first_responded_at"),
        ("request", ServiceRequest.objects.filter(_ticket_filter(scope, None)),
         Q(status__in=REQUEST_DELIVERED, fulfilled_at__gte=start, fulfilled_at__lt=end), "fulfilled_at",
         None, None),
    ]
    out: dict = {}
    pg = connection.vendor == "postgresql" if sql_percentile is None else sql_percentile
    for kind, qs, done, done_at, responded, responded_at in specs:
        rows_q = done | responded if responded is not None else done
        measures = {"resolved": Count("id", filter=done), "resolve_mean": Avg(_duration(done_at), filter=done)}
        if responded is not None:
            measures.update(responded=Count("id", filter=responded),
                            respond_mean=Avg(_duration(responded_at), filter=responded))
        if pg:
            measures["resolve_p90"] = PercentileCont(_duration(done_at), 0.9, filter=done,
                                                     output_field=DurationField())
            if responded is not None:
                measures["respond_p90"] = PercentileCont(_duration(responded_at), 0.9, filter=responded,
                                                         output_field=DurationField())
        base = qs.filter(rows_q)
        if by_priority:
            rows = list(base.values("priority").annotate(**measures).order_by("priority"))
        else:
            rows = [{"priority": None, **base.aggregate(**measures)}]
        if not pg:
            _p90_in_python(rows, base, done, done_at, "resolve_p90", by_priority)
            if responded is not None:
                _p90_in_python(rows, base, responded, responded_at, "respond_p90", by_priority)
        for row in rows:
            out[(kind, row["priority"])] = {
                "resolved": row["resolved"], "resolve_mean": _hours(row["resolve_mean"]),
                "resolve_p90": _hours(row.get("resolve_p90")),
                "responded": row.get("responded", 0), "respond_mean": _hours(row.get("respond_mean")),
                "respond_p90": _hours(row.get("respond_p90")),
            }
    return out


def _p90_in_python(rows, base, condition: Q, at: str, name: str, by_priority: bool) -> None:
    """SQLite: the durations of the rows, in order, read in one query; percentile_cont's interpolation."""
    ordered: dict = {}
    values = (base.filter(condition).annotate(d=_duration(at)).order_by("priority", "d")
              .values_list("priority", "d"))
    for priority, d in values:
        ordered.setdefault(priority if by_priority else None, []).append(d.total_seconds())
    for row in rows:
        seconds = percentile_cont(ordered.get(row["priority"], []), 0.9)
        row[name] = None if seconds is None else timedelta(seconds=seconds)


# --- all together ----------------------------------------------------------------------------------------


def measure_values(scope: Scope, *, totals: dict | None = None) -> dict[str, float | None]:
    """Every measure of MEASURES over the scope, in four queries (more on SQLite); `totals`: the scope's
    rollup_totals when the caller has them already."""
    t = totals if totals is not None else rollup_totals(scope)
    values: dict[str, float | None] = {
        "opened": t["opened"], "resolved": t["resolved"],
        "backlog": backlog_before(scope, through=scope.date_to),
        "csat_average": round(t["rating_sum"] / t["rated"], 2) if t["rated"] else None,
    }
    values.update({key: rate.percent for key, rate in rates(t).items()})
    times = time_figures(scope, by_priority=False)[("incident", None)]
    values.update({key: times[key] for key in ("respond_mean", "respond_p90", "resolve_mean", "resolve_p90")})
    return {key: values.get(key) for key in MEASURES}
