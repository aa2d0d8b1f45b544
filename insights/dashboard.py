"""The service insights dashboard's figures for a Scope (insights.types.Dashboard), and its tables as the
exports write them.

A fixed number of queries whatever the number of tickets or days: the rollup's totals (this period and the
one before), its per-day series, its facets, the backlog before the period, the exact times from the tickets
(insights.measures.time_figures), the latest comments, the open workload, and the names of what the rows
point at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Exists, F, OuterRef, Q, Sum
from django.db.models.functions import TruncWeek
from django.urls import reverse

from incidents.models import Category, Channel, Incident
from incidents.states import OPEN as INCIDENT_OPEN
from insights.measures import (
    MEASURES,
    backlog_before,
    format_value,
    measures_and_previous,
    rates,
    rollup_filter,
    rollup_scope_q,
    rollup_totals,
    tickets_q,
    time_figures,
)
from insights.models import DailyFacet, DailyRollup, Facet, RollupKind
from insights.rollup import rolled_at
from insights.types import (
    Comment,
    CountRow,
    Dashboard,
    DayPoint,
    Satisfaction,
    Scope,
    SlaPoint,
    Tile,
    TimeRow,
    WorkloadRow,
)
from requests_app.models import ServiceRequest
from requests_app.states import OPEN as REQUEST_OPEN
from servicedesk.exports import Column
from servicedesk.models import Rating, Service

PRIORITY_LABELS = {1: "P1 Critical", 2: "P2 High", 3: "P3 Moderate", 4: "P4 Low", 5: "P5 Planning"}
KIND_LABELS = {"incident": "Incidents", "request": "Service requests"}
TOP_CATEGORIES = 10
LATEST_COMMENTS = 5
WEEKLY_AFTER_DAYS = 92  # longer periods draw the SLA trend per week


def _detail(key: str, t: dict) -> str:
    r = rates(t)
    if key in r and r[key].denominator:
        whole = {"sla_compliance": "SLA clocks stopped", "fcr_rate": "incidents raised by people resolved",
                 "reopen_rate": "incidents resolved", "deflection_rate": "suggestions followed up",
                 "automation_rate": "requests fulfilled", "monitoring_share": "incidents opened"}[key]
        return f"{r[key].numerator:,} of {r[key].denominator:,} {whole}"
    if key == "csat_average" and t["rated"]:
        return f"{t['rated']:,} rating{'s' if t['rated'] != 1 else ''}"
    return ""


def tiles_of(t: dict, now: dict, before: dict) -> tuple[Tile, ...]:
    return tuple(Tile(MEASURES[k], now[k], before[k], format_value(k, now[k]), _detail(k, t)) for k in MEASURES)


def _days(scope: Scope):
    return [scope.date_from + timedelta(days=i) for i in range(scope.days)]


def backlog_series(scope: Scope, *, start: int | None = None) -> tuple[DayPoint, ...]:
    """Opened, ended and open at the end of each day; `start`: the backlog at the end of the day before the
    period, when the caller has it (the previous period's backlog measure)."""
    rows = {r["day"]: r for r in DailyRollup.objects.filter(rollup_filter(scope, portal=False))
            .values("day").annotate(n_in=Sum("opened"), n_out=Sum("ended")).order_by()}
    backlog = start if start is not None else backlog_before(scope, through=scope.date_from - timedelta(days=1))
    points = []
    for day in _days(scope):
        row = rows.get(day, {"n_in": 0, "n_out": 0})
        backlog += row["n_in"] - row["n_out"]
        points.append(DayPoint(day, row["n_in"], row["n_out"], backlog))
    return tuple(points)


def sla_series(scope: Scope) -> tuple[tuple[SlaPoint, ...], str]:
    weekly = scope.days > WEEKLY_AFTER_DAYS
    qs = DailyRollup.objects.filter(rollup_filter(scope, portal=False))
    qs = qs.annotate(bucket=TruncWeek("day")).values("bucket") if weekly else qs.values(bucket=F("day"))
    rows = {(r["bucket"].date() if hasattr(r["bucket"], "date") else r["bucket"]): r
            for r in qs.annotate(n_met=Sum("sla_met"), n_breached=Sum("sla_breached")).order_by()}
    if weekly:
        first = scope.date_from - timedelta(days=scope.date_from.weekday())
        buckets = [first + timedelta(weeks=i) for i in range((scope.date_to - first).days // 7 + 1)]
    else:
        buckets = _days(scope)
    points = tuple(SlaPoint(b, (rows.get(b) or {}).get("n_met") or 0, (rows.get(b) or {}).get("n_breached") or 0)
                   for b in buckets)
    return points, "week" if weekly else "day"


def time_rows(times: dict) -> tuple[TimeRow, ...]:
    out = []
    for (kind, priority), periods in sorted(times.items(), key=lambda kv: (kv[0][0], kv[0][1] or 99)):
        f = periods["now"]
        if priority is None or (not f["resolved"] and not f["responded"]):
            continue
        out.append(TimeRow(kind, KIND_LABELS[kind], priority, PRIORITY_LABELS.get(priority, f"P{priority}"),
                           f["resolved"], f["resolve_mean"], f["resolve_p90"], f["responded"],
                           f["respond_mean"] if kind == "incident" else None,
                           f["respond_p90"] if kind == "incident" else None))
    return tuple(out)


def _visible_ticket(model, scope: Scope, *, service_field: str | None):
    """EXISTS (the rated ticket is one of the scope's), for ratings, which point at tickets by id."""
    mine = tickets_q(scope, service_field)
    return None if mine is None else Exists(model.objects.filter(mine, id=OuterRef("object_id")))


def satisfaction_of(scope: Scope, t: dict) -> Satisfaction:
    """The rollup's ratings, and the latest comments of the scope: the period's ratings newest first (index on
    type and time), each kept if its ticket is one of the scope's (EXISTS), so the query stops at five."""
    inc_ct = ContentType.objects.get_for_model(Incident)
    req_ct = ContentType.objects.get_for_model(ServiceRequest)
    mine = Q()
    for ct, model, service_field in ((inc_ct, Incident, "service_id"), (req_ct, ServiceRequest, None)):
        visible = _visible_ticket(model, scope, service_field=service_field)
        if visible is not None:
            mine |= Q(visible, content_type=ct)
    latest = [] if not mine else (
        Rating.objects.filter(created_at__gte=scope.start, created_at__lt=scope.end).exclude(comment="")
        .filter(mine).order_by("-created_at", "-id")
        .values("number", "score", "comment", "created_at", "content_type_id")[:LATEST_COMMENTS])
    comments = tuple(Comment(r["number"], r["score"], r["comment"], r["created_at"],
                             reverse("agent:incident" if r["content_type_id"] == inc_ct.id else "agent:request",
                                     args=[r["number"]]))
                     for r in latest)
    return Satisfaction(t["rated"], round(t["rating_sum"] / t["rated"], 2) if t["rated"] else None,
                        tuple(t[f"rating_{i}"] for i in range(1, 6)), comments)


def facet_rows(scope: Scope) -> dict[tuple[str, str], list[dict]]:
    """Opened and resolved per facet value over the scope, every facet in one query."""
    q = Q(day__gte=scope.date_from, day__lte=scope.date_to) & rollup_scope_q(scope)
    out: dict[tuple[str, str], list[dict]] = {}
    for row in (DailyFacet.objects.filter(q).values("kind", "facet", "key")
                .annotate(n_in=Sum("opened"), n_done=Sum("resolved")).order_by("-n_in", "key")):
        row["opened"], row["resolved"] = row.pop("n_in"), row.pop("n_done")
        out.setdefault((row["kind"], row["facet"]), []).append(row)
    return out


def by_service(scope: Scope) -> tuple[CountRow, ...]:
    rows = list(DailyRollup.objects.filter(rollup_filter(scope, portal=False), kind=RollupKind.INCIDENT)
                .values("service_id").annotate(n_in=Sum("opened"), n_done=Sum("resolved"))
                .order_by("-n_in", "service_id"))
    names = dict(Service.objects.filter(id__in=[r["service_id"] for r in rows]).values_list("id", "name"))
    return tuple(CountRow(str(r["service_id"]), names.get(r["service_id"], "No service"), r["n_in"],
                          r["n_done"]) for r in rows if r["n_in"] or r["n_done"])


def workload(scope: Scope, facets: dict) -> tuple[WorkloadRow, ...]:
    """Per agent: incidents and requests assigned now and not ended (from the open tickets' partial indexes),
    and those they resolved in the period (the rollup's assignee facet)."""
    open_now: dict[int, int] = {}
    for model, states, service_field in ((Incident, INCIDENT_OPEN, "service_id"),
                                         (ServiceRequest, REQUEST_OPEN, None)):
        mine = tickets_q(scope, service_field)
        if mine is None:
            continue
        qs = model.objects.filter(mine, status__in=states, assignee__isnull=False)
        for row in qs.values("assignee_id").annotate(n=Count("id")).order_by():
            open_now[row["assignee_id"]] = open_now.get(row["assignee_id"], 0) + row["n"]
    resolved: dict[int, int] = {}
    for kind in (RollupKind.INCIDENT, RollupKind.REQUEST):
        for row in facets.get((kind, Facet.ASSIGNEE), []):
            if row["key"]:
                resolved[int(row["key"])] = resolved.get(int(row["key"]), 0) + row["resolved"]
    ids = set(open_now) | {i for i, n in resolved.items() if n}
    users = get_user_model().objects.filter(id__in=ids).only("id", "username", "first_name", "last_name")
    rows = [WorkloadRow(u.id, u.get_full_name() or u.username, open_now.get(u.id, 0), resolved.get(u.id, 0))
            for u in users]
    rows.sort(key=lambda r: (-r.open_now, -r.resolved, r.name))
    return tuple(rows)


def dashboard_data(scope: Scope) -> Dashboard:
    t = rollup_totals(scope)
    r = rates(t)
    facets = facet_rows(scope)
    channels = dict(Channel.choices)
    by_source = tuple(CountRow(row["key"], channels.get(row["key"], row["key"] or "Unknown"), row["opened"],
                               row["resolved"])
                      for row in facets.get((RollupKind.INCIDENT, Facet.CHANNEL), []) if row["opened"])
    top = [row for row in facets.get((RollupKind.INCIDENT, Facet.CATEGORY), []) if row["opened"]][:TOP_CATEGORIES]
    names = {str(c.id): str(c) for c in Category.objects.filter(id__in=[int(r["key"]) for r in top if r["key"]])
             .select_related("parent")}
    categories = tuple(CountRow(row["key"], names.get(row["key"], "No category"), row["opened"], row["resolved"])
                       for row in top)
    sla, bucket = sla_series(scope)
    times = time_figures(scope)
    now, before = measures_and_previous(scope, totals=t, times=times)
    return Dashboard(
        scope=scope, tiles=tiles_of(t, now, before), backlog=backlog_series(scope, start=int(before["backlog"])),
        times=time_rows(times), sla=sla,
        sla_bucket=bucket, fcr=r["fcr_rate"], reopen=r["reopen_rate"], deflection=r["deflection_rate"],
        automation=r["automation_rate"], satisfaction=satisfaction_of(scope, t), by_service=by_service(scope),
        by_source=by_source, categories=categories, workload=workload(scope, facets), rolled_at=rolled_at(),
        extras={"monitoring": r["monitoring_share"]},
    )


# --- as tables (exports) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportTable:
    title: str
    columns: list
    rows: list


def _counts(title: str, what: str, rows) -> ExportTable:
    """A "by ..." table (CountRow): the label, opened and resolved."""
    return ExportTable(title, [Column(what, lambda r: r.label), Column("Opened", lambda r: r.opened, "int"),
                               Column("Resolved", lambda r: r.resolved, "int")], list(rows))


def dashboard_tables(d: Dashboard) -> dict[str, ExportTable]:
    """Every table of the dashboard, as the CSV/XLSX export writes it (servicedesk.exports.Column)."""
    def rate_rows():
        return [("First-contact resolution", d.fcr), ("Reopen rate", d.reopen),
                ("Self-service deflection", d.deflection), ("Automation rate", d.automation)]

    return {
        "measures": ExportTable("Measures", [
            Column("Measure", lambda t: t.measure.label), Column("Value", lambda t: t.display),
            Column("Previous period", lambda t: format_value(t.measure.key, t.previous)),
            Column("Detail", lambda t: t.detail)], list(d.tiles)),
        "backlog": ExportTable("Backlog over time", [
            Column("Day", lambda p: p.day, "date"), Column("Opened", lambda p: p.opened, "int"),
            Column("Resolved or closed", lambda p: p.ended, "int"),
            Column("Open at end of day", lambda p: p.backlog, "int")], list(d.backlog)),
        "times": ExportTable("Time to respond and resolve (hours)", [
            Column("Type", lambda r: r.kind_label), Column("Priority", lambda r: r.priority_label),
            Column("Resolved", lambda r: r.resolved, "int"),
            Column("Mean to resolve (h)", lambda r: r.resolve_mean, "float"),
            Column("90th pct to resolve (h)", lambda r: r.resolve_p90, "float"),
            Column("Responded", lambda r: r.responded, "int"),
            Column("Mean to respond (h)", lambda r: r.respond_mean, "float"),
            Column("90th pct to respond (h)", lambda r: r.respond_p90, "float")], list(d.times)),
        "sla": ExportTable("SLA compliance", [
            Column("Week from" if d.sla_bucket == "week" else "Day", lambda p: p.day, "date"),
            Column("Met", lambda p: p.met, "int"), Column("Breached", lambda p: p.breached, "int"),
            Column("Compliance", lambda p: p.compliance, "percent")], list(d.sla)),
        "rates": ExportTable("Rates", [
            Column("Rate", lambda r: r[0]), Column("Of", lambda r: r[1].denominator, "int"),
            Column("Count", lambda r: r[1].numerator, "int"), Column("Percent", lambda r: r[1].percent, "percent")],
            rate_rows()),
        "satisfaction": ExportTable("Satisfaction", [
            Column("Score", lambda r: r[0], "int"), Column("Ratings", lambda r: r[1], "int")],
            [(i + 1, n) for i, n in enumerate(d.satisfaction.distribution)]),
        "comments": ExportTable("Latest comments", [
            Column("Ticket", lambda c: c.number), Column("Score", lambda c: c.score, "int"),
            Column("Comment", lambda c: c.comment), Column("Given", lambda c: c.at, "datetime")],
            list(d.satisfaction.comments)),
        "by-service": _counts("Incidents by service", "Service", d.by_service),
        "by-source": _counts("Incidents by source", "Source", d.by_source),
        "categories": _counts("Top recurring categories", "Category", d.categories),
        "workload": ExportTable("Agent workload", [
            Column("Agent", lambda r: r.name), Column("Open now", lambda r: r.open_now, "int"),
            Column("Resolved in the period", lambda r: r.resolved, "int")], list(d.workload)),
    }
