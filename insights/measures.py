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

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import Case, IntegerField, Q, Sum, Value, When

from incidents.models import Incident
from insights.models import DailyRollup, RollupKind
from insights.rollup import COUNTERS, INCIDENT_DONE, REQUEST_DELIVERED
from insights.types import Measure, Rate, Scope
from requests_app.models import ServiceRequest
from servicedesk.aggregates import percentile_cont
from servicedesk.periods import day_after, day_start

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


def tickets_q(scope: Scope, service_field: str | None) -> Q | None:
    """The scope's tickets of one type (its teams, its service) as a filter on the ticket table; None when a
    service is chosen and the type has none (`service_field` None: requests), so no ticket of it counts."""
    q = Q()
    if scope.team_ids is not None:
        q &= Q(assignment_group_id__in=scope.team_ids)
    if scope.service_id:
        if service_field is None:
            return None
        q &= Q(**{service_field: scope.service_id})
    return q


def rollup_scope_q(scope: Scope) -> Q:
    """The scope's teams and service on rollup rows (DailyRollup, DailyFacet)."""
    q = Q()
    if scope.team_ids is not None:
        q &= Q(team_id__in=scope.team_ids)
    if scope.service_id:
        q &= Q(service_id=scope.service_id)
    return q


def rollup_filter(scope: Scope, *, period: bool = True, portal: bool = True) -> Q:
    """The rollup rows of the scope: its days (unless `period` is False), its teams and service; portal rows
    (deflections, which have no team or service) are kept when `portal`."""
    q = Q(kind__in=(RollupKind.INCIDENT, RollupKind.REQUEST)) & rollup_scope_q(scope)
    if portal:
        q |= Q(kind=RollupKind.PORTAL)
    if period:
        q &= Q(day__gte=scope.date_from, day__lte=scope.date_to)
    return q


INCIDENTS, REQUESTS = Q(kind=RollupKind.INCIDENT), Q(kind=RollupKind.REQUEST)


def rollup_totals(scope: Scope) -> dict[str, int]:
    """Every counter of the rollup summed over the scope, plus the per-type sums the rates need: one query."""
    row = DailyRollup.objects.filter(rollup_filter(scope)).aggregate(**_sums())
    return _totals(row)


def _sums() -> dict:
    """Every counter of the rollup summed, plus the per-type sums the rates need (aliases may not shadow the
    columns they add up: "sum_" until _totals takes it off)."""
    sums = {f"sum_{c}": Sum(c) for c in COUNTERS}
    sums.update(sum_inc_opened=Sum("opened", filter=INCIDENTS), sum_inc_resolved=Sum("resolved", filter=INCIDENTS),
                sum_inc_people=Sum("resolved_people", filter=INCIDENTS),
                sum_req_resolved=Sum("resolved", filter=REQUESTS))
    return sums


def _totals(row: dict) -> dict[str, int]:
    return {k.removeprefix("sum_"): (v or 0) for k, v in row.items() if k.startswith("sum_")}


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

FIGURES = ("resolved", "resolve_mean", "resolve_p90", "responded", "respond_mean", "respond_p90")
PERIODS = ("now", "before")


def _hours(seconds) -> float | None:
    if seconds is None:
        return None
    seconds = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)  # numeric: Decimal
    return round(seconds / 3600, 2)


@dataclass(frozen=True)
class _Times:
    """How one ticket type's times are read: its table, when it was resolved, when first responded to."""

    kind: str
    model: type
    done: tuple[str, ...]  # statuses that count as resolved
    done_at: str
    responded_at: str | None
    service: str | None


TIMES = (
    _Times("incident", Incident, tuple(INCIDENT_DONE), "resolved_at", "first_responded_at", "service_id"),
    _Times("request", ServiceRequest, tuple(REQUEST_DELIVERED), "fulfilled_at", None, None),
)


def _scope_sql(scope: Scope, spec: _Times) -> tuple[str, list]:
    where, params = [], []
    if scope.team_ids is not None:
        where.append("assignment_group_id = ANY(%s)")
        params.append(list(scope.team_ids) or [0])
    if scope.service_id:
        if spec.service is None:
            where.append("FALSE")
        else:
            where.append(f"{spec.service} = %s")
            params.append(scope.service_id)
    return "".join(f" AND {w}" for w in where), params


def _times_sql(spec: _Times, *, before, start, end, where: str = "", where_params=(),
               dims: tuple[str, ...] = ("priority",),
               sets: str = "(priority), ()") -> tuple[str, list]:
    """One scan of the rows resolved or first responded to in [before, end): mean and percentile_cont of each
    duration over [start, end) ("now") and [before, start) ("before"), grouped by GROUPING SETS of `dims`
    (columns of the inner query: g = team, s = service, priority). Rows: dims..., GROUPING(dims) bitmask,
    then per period resolved, mean, p90 (and responded, mean, p90) in seconds."""
    table = spec.model._meta.db_table
    flags = [f"status = ANY(%s) AND {spec.done_at} >= %s AND {spec.done_at} < %s AS done_now",
             f"status = ANY(%s) AND {spec.done_at} >= %s AND {spec.done_at} < %s AS done_before"]
    params: list = [list(spec.done), start, end, list(spec.done), before, start]
    rows_where = f"(status = ANY(%s) AND {spec.done_at} >= %s AND {spec.done_at} < %s)"
    row_params: list = [list(spec.done), before, end]
    columns = ["assignment_group_id AS g", f"{spec.service or 'NULL::bigint'} AS s", "priority",
               f"{spec.done_at} - created_at AS resolve"]
    if spec.responded_at:
        flags += [f"{spec.responded_at} >= %s AND {spec.responded_at} < %s AS resp_now",
                  f"{spec.responded_at} >= %s AND {spec.responded_at} < %s AS resp_before"]
        params += [start, end, before, start]
        rows_where = f"({rows_where} OR ({spec.responded_at} >= %s AND {spec.responded_at} < %s))"
        row_params += [before, end]
        columns.append(f"{spec.responded_at} - created_at AS respond")
    aggregates = []
    for period in PERIODS:
        aggregates += [f"count(*) FILTER (WHERE done_{period})",
                       f"extract(epoch FROM avg(resolve) FILTER (WHERE done_{period}))",
                       f"extract(epoch FROM percentile_cont(0.9) WITHIN GROUP (ORDER BY resolve) "
                       f"FILTER (WHERE done_{period}))"]
        if spec.responded_at:
            aggregates += [f"count(*) FILTER (WHERE resp_{period})",
                           f"extract(epoch FROM avg(respond) FILTER (WHERE resp_{period}))",
                           f"extract(epoch FROM percentile_cont(0.9) WITHIN GROUP (ORDER BY respond) "
                           f"FILTER (WHERE resp_{period}))"]
    sql = (f"SELECT {', '.join(dims)}, GROUPING({', '.join(dims)}), {', '.join(aggregates)} FROM ("
           f"SELECT {', '.join(columns + flags)} FROM {table} "
           f"WHERE {rows_where}{where}) t GROUP BY GROUPING SETS ({sets})")
    return sql, params + row_params + list(where_params)


def _times_python(scope: Scope, spec: _Times) -> list[tuple]:
    """SQLite (no percentile_cont): the same figures from the rows' durations, read in one query."""
    before, start, end = scope.previous().start, scope.start, scope.end
    done = Q(status__in=spec.done, **{f"{spec.done_at}__gte": before, f"{spec.done_at}__lt": end})
    rows_q = done
    fields = ["priority", "status", "created_at", spec.done_at]
    if spec.responded_at:
        rows_q |= Q(**{f"{spec.responded_at}__gte": before, f"{spec.responded_at}__lt": end})
        fields.append(spec.responded_at)
    mine = tickets_q(scope, spec.service)
    qs = spec.model.objects.filter(rows_q & mine) if mine is not None else spec.model.objects.none()
    samples: dict = {}
    for row in qs.values_list(*fields):
        priority, status, created, done_at = row[:4]
        responded = row[4] if spec.responded_at else None
        for period, (lo, hi) in (("now", (start, end)), ("before", (before, start))):
            if status in spec.done and done_at is not None and lo <= done_at < hi:
                for key in (priority, None):
                    samples.setdefault((key, "resolve", period), []).append((done_at - created).total_seconds())
            if responded is not None and lo <= responded < hi:
                for key in (priority, None):
                    samples.setdefault((key, "respond", period), []).append((responded - created).total_seconds())
    priorities = sorted({k[0] for k in samples if k[0] is not None})
    out = []
    for priority in [*priorities, None]:
        row = [priority, 1 if priority is None else 0]
        for period in PERIODS:
            for what in ("resolve", "respond") if spec.responded_at else ("resolve",):
                values = sorted(samples.get((priority, what, period), []))
                row += [len(values), sum(values) / len(values) if values else None, percentile_cont(values, 0.9)]
        out.append(tuple(row))
    return out


def _figures(spec: _Times, values: list) -> dict:
    """{"now": {...}, "before": {...}} from the aggregates of one row (seconds -> hours)."""
    names = FIGURES if spec.responded_at else FIGURES[:3]
    entry = {}
    for period in PERIODS:
        chunk, values = values[:len(names)], values[len(names):]
        figures = {**dict.fromkeys(FIGURES), "responded": 0}
        for name, value in zip(names, chunk, strict=True):
            figures[name] = int(value or 0) if name in ("resolved", "responded") else _hours(value)
        entry[period] = figures
    return entry


def _empty() -> dict:
    return {p: {**dict.fromkeys(FIGURES), "resolved": 0, "responded": 0} for p in PERIODS}


def time_figures(scope: Scope, *, sql_percentile: bool | None = None, precomputed: bool = True) -> dict:
    """Mean and 90th percentile (hours) of incidents' time to respond and resolve and requests' time to
    fulfil, over the scope and over the period before it: {(kind, priority or None for all): {"now": {...},
    "before": {...}}} with FIGURES as keys.

    The dashboard's standard windows (the last 7, 30 or 90 days up to today, for all teams, one team or one
    service) are read from what the rollup task worked out (WindowTimes, one query) when it ran today; any other
    scope from the tickets: one query per ticket type on PostgreSQL (percentile_cont, GROUPING SETS), on SQLite
    (or with sql_percentile=False: tests compare both ways) the durations read in one query and interpolated
    the same way."""
    if precomputed:
        stored = _window_figures(scope)
        if stored is not None:
            return stored
    use_sql = connection.vendor == "postgresql" if sql_percentile is None else sql_percentile
    out: dict = {}
    for spec in TIMES:
        if use_sql:
            where, where_params = _scope_sql(scope, spec)
            sql, params = _times_sql(spec, before=scope.previous().start, start=scope.start, end=scope.end,
                                     where=where, where_params=where_params)
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                rows = cursor.fetchall()
        else:
            rows = _times_python(scope, spec)
        for row in rows:
            out[(spec.kind, None if row[1] else row[0])] = _figures(spec, list(row[2:]))
        out.setdefault((spec.kind, None), _empty())
    return out


# --- the standard windows, worked out by the rollup task -------------------------------------------------

WINDOWS = (7, 30, 90)


def _window_key(scope: Scope) -> str | None:
    """The stored key of a scope whose times the rollup task works out, or None."""
    if scope.service_id and scope.team_id is None and scope.team_ids is None:
        return f"service:{scope.service_id}"
    if scope.service_id:
        return None
    if scope.team_ids is None:
        return "all"
    if len(scope.team_ids) == 1:
        return f"team:{scope.team_ids[0]}"
    return None


def _window_figures(scope: Scope) -> dict | None:
    from django.utils import timezone

    from insights.models import WindowTimes

    key = _window_key(scope)
    if key is None or scope.days not in WINDOWS or scope.date_to != timezone.localdate():
        return None
    rows = list(WindowTimes.objects.filter(last_day=scope.date_to, days=scope.days, key=key).values())
    if not rows:
        if not WindowTimes.objects.filter(last_day=scope.date_to, days=scope.days).exists():
            return None  # not worked out today yet: read the tickets
        rows = []  # worked out, and nothing of this scope was resolved or responded to
    out: dict = {}
    for row in rows:
        entry = out.setdefault((row["kind"], row["priority"] or None), _empty())
        entry["before" if row["previous"] else "now"] = {name: row[name] for name in FIGURES}
    for spec in TIMES:
        out.setdefault((spec.kind, None), _empty())
    return out


def window_times_rows(today) -> list[dict]:
    """The times of every standard window up to `today` (and the window before each), for all teams, each
    team and each service, by priority and overall: what WindowTimes stores. On PostgreSQL one GROUPING SETS
    query per window and ticket type; on SQLite the same figures scope by scope in Python."""
    from servicedesk.models import Service, Team

    out = []
    for days in WINDOWS:
        first = today - timedelta(days=days - 1)
        start, end, before = day_start(first), day_after(today), day_start(first - timedelta(days=days))
        results: list[tuple[str, str, int, dict]] = []  # kind, key, priority, figures
        if connection.vendor == "postgresql":
            for spec in TIMES:
                dims, sets = ("g", "s", "priority"), "(g, priority), (g), (s, priority), (s), (priority), ()"
                sql, params = _times_sql(spec, before=before, start=start, end=end, dims=dims, sets=sets)
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    rows = cursor.fetchall()
                for g, s_id, priority, mask, *values in rows:
                    if mask & 0b110 == 0b110:
                        key = "all"
                    elif mask & 0b100 == 0 and g is not None:
                        key = f"team:{g}"
                    elif mask & 0b010 == 0 and s_id is not None:
                        key = f"service:{s_id}"
                    else:
                        continue  # tickets with no team or no service: only in "all"
                    results.append((spec.kind, key, 0 if mask & 1 else priority, _figures(spec, values)))
        else:
            scopes = [("all", Scope(first, today))]
            scopes += [(f"team:{t}", Scope(first, today, (t,), t)) for t in Team.objects.values_list("id", flat=True)]
            scopes += [(f"service:{v}", Scope(first, today, None, None, v))
                       for v in Service.objects.values_list("id", flat=True)]
            for key, scope in scopes:
                for spec in TIMES:
                    for row in _times_python(scope, spec):
                        results.append((spec.kind, key, 0 if row[1] else row[0], _figures(spec, list(row[2:]))))
        for kind, key, priority, figures in results:
            for period, previous in (("now", False), ("before", True)):
                f = figures[period]
                if f["resolved"] or f["responded"]:
                    out.append({"last_day": today, "days": days, "previous": previous, "kind": kind, "key": key,
                                "priority": priority, **f})
    return out


# --- all together ----------------------------------------------------------------------------------------


TIME_KEYS = ("respond_mean", "respond_p90", "resolve_mean", "resolve_p90")


def _from_totals(t: dict) -> dict[str, float | None]:
    values: dict[str, float | None] = {
        "opened": t["opened"], "resolved": t["resolved"],
        "csat_average": round(t["rating_sum"] / t["rated"], 2) if t["rated"] else None,
    }
    values.update({key: rate.percent for key, rate in rates(t).items()})
    return values


def measure_values(scope: Scope, *, totals: dict | None = None, times: dict | None = None) -> dict[str, float | None]:
    """Every measure of MEASURES over the scope, in four queries; `totals` (rollup_totals) and `times` (the
    incidents' overall figures of time_figures) when the caller has them already."""
    t = totals if totals is not None else rollup_totals(scope)
    values = _from_totals(t)
    values["backlog"] = backlog_before(scope, through=scope.date_to)
    if times is None:
        times = time_figures(scope)[("incident", None)]["now"]
    values.update({key: times[key] for key in TIME_KEYS})
    return {key: values.get(key) for key in MEASURES}


def measure_series(scope: Scope, key: str, ranges: list[tuple]) -> list[float | None]:
    """One measure over several consecutive periods of the scope's teams and service (`ranges`: (first day,
    last day) pairs, in order), in at most two queries whatever their number: the rollup's sums per range
    (or, for the backlog, per day), or the incidents' times per range in one percentile_cont query."""
    if not ranges:
        return []
    span = Scope(ranges[0][0], ranges[-1][1], scope.team_ids, scope.team_id, scope.service_id)
    if key in TIME_KEYS:
        return _time_series(span, key, ranges)
    if key == "backlog":
        base = backlog_before(span, through=span.date_from - timedelta(days=1))
        per_day = dict(DailyRollup.objects.filter(rollup_filter(span, portal=False)).values("day")
                       .annotate(net=Sum("opened") - Sum("ended")).order_by().values_list("day", "net"))
        out, running, day = [], base, span.date_from
        for _, last in ranges:
            while day <= last:
                running += per_day.get(day, 0) or 0
                day += timedelta(days=1)
            out.append(running)
        return out
    which = Case(*[When(day__gte=a, day__lte=b, then=Value(i)) for i, (a, b) in enumerate(ranges)],
                 output_field=IntegerField())
    rows = {row["bucket"]: _totals(row) for row in DailyRollup.objects.filter(rollup_filter(span))
            .annotate(bucket=which).values("bucket").annotate(**_sums()).order_by()}
    empty = _totals(dict.fromkeys(_sums(), 0))
    return [_from_totals(rows.get(i, empty)).get(key) for i in range(len(ranges))]


def _time_series(span: Scope, key: str, ranges: list[tuple]) -> list[float | None]:
    """Incidents' mean or 90th percentile time per range: one query (width_bucket, percentile_cont); SQLite
    reads the durations in one query and interpolates the same way."""
    spec = TIMES[0]
    at = spec.responded_at if key.startswith("respond") else spec.done_at
    bounds = [day_start(a) for a, _ in ranges] + [day_after(ranges[-1][1])]
    if connection.vendor == "postgresql":
        where, params = _scope_sql(span, spec)
        status = "AND status = ANY(%s)" if at == spec.done_at else ""
        figure = ("percentile_cont(0.9) WITHIN GROUP (ORDER BY d)" if key.endswith("_p90") else "avg(d)")
        sql = (f"SELECT width_bucket({at}, %s::timestamptz[]) AS b, extract(epoch FROM {figure}) "
               f"FROM (SELECT {at}, {at} - created_at AS d FROM {spec.model._meta.db_table} "
               f"WHERE {at} >= %s AND {at} < %s {status}{where}) t GROUP BY b")
        with connection.cursor() as cursor:
            cursor.execute(sql, [bounds, bounds[0], bounds[-1], *([list(spec.done)] if status else []), *params])
            found = {b: _hours(v) for b, v in cursor.fetchall()}
        return [found.get(i + 1) for i in range(len(ranges))]
    base = Q(**{f"{at}__gte": bounds[0], f"{at}__lt": bounds[-1]}) & tickets_q(span, spec.service)
    if at == spec.done_at:
        base &= Q(status__in=spec.done)
    samples: dict[int, list[float]] = {}
    for stamp, created in spec.model.objects.filter(base).values_list(at, "created_at"):
        index = next(i for i in range(len(ranges)) if bounds[i] <= stamp < bounds[i + 1])
        samples.setdefault(index, []).append((stamp - created).total_seconds())
    out = []
    for i in range(len(ranges)):
        values = sorted(samples.get(i, []))
        if not values:
            out.append(None)
        elif key.endswith("_p90"):
            out.append(_hours(percentile_cont(values, 0.9)))
        else:
            out.append(_hours(sum(values) / len(values)))
    return out


def measures_and_previous(scope: Scope, *, totals: dict | None = None,
                          times: dict | None = None) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Every measure over the scope and over the period of the same length just before it (the dashboard's
    tiles, the API, the weekly e-mail): the times of both periods come from one time_figures scan."""
    overall = (times if times is not None else time_figures(scope))[("incident", None)]
    now = measure_values(scope, totals=totals, times=overall["now"])
    return now, measure_values(scope.previous(), times=overall["before"])
