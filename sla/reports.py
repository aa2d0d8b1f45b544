"""SLA compliance reports: reads of stopped clocks, grouped by team, priority or policy, for managers and admins.

Ticket-agnostic: only the sla tables are read (and the team's name); tickets are named through their app's
adapter (sla.registry). A period is whole days in the site's time zone, `from` and `to` included; a clock
counts in the period in which it stopped (met or breached; cancelled clocks are left out). A resolution clock
that is reopened runs again and counts when it stops again. Per group and clock kind: clocks stopped, met,
breached, compliance (met / stopped), mean and 90th percentile of the business time they ran, and the clocks
still open that had breached by the end of the period.

Every figure is computed in SQL in a constant number of queries, whatever the number of groups or clocks; the
90th percentile is PostgreSQL's `percentile_cont`, and on SQLite (the local run) the same interpolation over
the elapsed times read in one ordered query.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import Avg, Count, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from servicedesk.aggregates import PercentileCont, percentile_cont
from servicedesk.exports import neutralise
from servicedesk.periods import check_period, day_after, day_start, parse_day
from servicedesk.roles import Role, role_of
from sla import clock as engine
from sla.models import ACTIVE_CLOCK_STATES, ClockKind, ClockState, SlaClock
from sla.registry import TicketInfo, adapter_for, ticket_types

GROUP_BY = {"team": "Team", "priority": "Priority", "policy": "Policy"}
KINDS = (ClockKind.FIRST_RESPONSE, ClockKind.RESOLUTION)
MAX_DAYS = 366
DEFAULT_DAYS = 30
STOPPED = (ClockState.MET, ClockState.BREACHED)


def reports_allowed(user) -> bool:
    """SLA reports are for managers (team leads) and admins; agents see each ticket's clocks on the ticket."""
    return role_of(user) in (Role.MANAGER, Role.ADMIN)


# --- parameters -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportParams:
    date_from: date
    date_to: date
    group_by: str
    kinds: tuple[str, ...] = KINDS
    ticket_types: tuple[str, ...] = ()

    @property
    def start(self) -> datetime:
        return day_start(self.date_from)

    @property
    def end(self) -> datetime:
        """The first instant after the period (midnight after `to`, in the site's time zone)."""
        return day_after(self.date_to)

    def query(self) -> dict[str, str]:
        """The parameters as a query string's values (for links: CSV, pages)."""
        values = {"from": self.date_from.isoformat(), "to": self.date_to.isoformat(), "group_by": self.group_by}
        if self.kinds != KINDS:
            values["kind"] = self.kinds[0]
        if len(self.ticket_types) == 1 and len(ticket_types()) > 1:
            values["ticket_type"] = self.ticket_types[0]
        return values


class ReportParamsError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def report_params(query, *, defaults: bool = False, today: date | None = None) -> ReportParams:
    """The report's parameters from a query string (a QueryDict or dict); raises ReportParamsError naming each
    bad field. With `defaults`, a missing period is the last 30 days up to today and a missing grouping is by
    team (the workspace page); the API requires all three."""
    errors: dict[str, str] = {}
    today = today or timezone.localdate()
    raw_from, raw_to, group_by = query.get("from"), query.get("to"), query.get("group_by")
    if defaults:
        raw_to = raw_to or today.isoformat()
        if not raw_from:
            anchor = parse_day(raw_to, "to", {}, today=today) or today
            raw_from = (anchor - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
        group_by = group_by or "team"
    date_from, date_to = parse_day(raw_from, "from", errors, today=today), parse_day(raw_to, "to", errors, today=today)
    if not group_by:
        errors["group_by"] = f"Required: one of {', '.join(GROUP_BY)}."
    elif group_by not in GROUP_BY:
        errors["group_by"] = f"{group_by!r} is not a grouping: use one of {', '.join(GROUP_BY)}."
    kind = query.get("kind") or ""
    kinds = KINDS
    if kind:
        if kind not in KINDS:
            errors["kind"] = f"{kind!r} is not a clock kind: use {' or '.join(KINDS)}."
        else:
            kinds = (kind,)
    known = tuple(ticket_types())
    wanted = query.get("ticket_type") or ""
    if wanted and wanted not in known:
        errors["ticket_type"] = f"{wanted!r} is not a ticket type: use one of {', '.join(known) or '(none yet)'}."
    check_period(date_from, date_to, errors, max_days=MAX_DAYS)
    if errors:
        raise ReportParamsError(errors)
    return ReportParams(date_from, date_to, group_by, kinds, (wanted,) if wanted else known)


# --- figures ----------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """One group's figures for one clock kind."""

    met: int = 0
    breached: int = 0
    mean_seconds: float | None = None
    p90_seconds: float | None = None
    open_breached: int = 0

    @property
    def stopped(self) -> int:
        return self.met + self.breached

    @property
    def compliance(self) -> float | None:
        """Per cent of stopped clocks that met their target, one decimal; None when none stopped."""
        return round(100 * self.met / self.stopped, 1) if self.stopped else None

    def as_dict(self) -> dict:
        return {"stopped": self.stopped, "met": self.met, "breached": self.breached, "compliance": self.compliance,
                "mean_seconds": _round(self.mean_seconds), "p90_seconds": _round(self.p90_seconds),
                "open_breached": self.open_breached}


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


@dataclass
class Group:
    key: int | str | None
    label: str
    figures: dict[str, Figures] = field(default_factory=dict)

    def as_dict(self, kinds) -> dict:
        return {"key": self.key, "label": self.label, **{k: self.figures[k].as_dict() for k in kinds}}


@dataclass
class Report:
    params: ReportParams
    groups: list[Group]
    totals: dict[str, Figures]

    def as_dict(self) -> dict:
        p = self.params
        return {
            "from": p.date_from.isoformat(), "to": p.date_to.isoformat(), "group_by": p.group_by,
            "kinds": list(p.kinds), "ticket_types": list(p.ticket_types),
            "time_zone": timezone.get_current_timezone_name(),
            "groups": [g.as_dict(p.kinds) for g in self.groups],
            "totals": {k: self.totals[k].as_dict() for k in p.kinds},
        }


# The columns a grouping reads, and how a row's values become the group's key and label.
_GROUP_FIELDS = {"team": ("team_id", "team__name"), "priority": ("priority",), "policy": ("policy_name",)}


def _key_label(group_by: str, row: dict) -> tuple:
    if group_by == "team":
        return row["team_id"], row["team__name"] or "No team"
    if group_by == "priority":
        return row["priority"], f"P{row['priority']}"
    return row["policy_name"], row["policy_name"] or "No policy"


def _sort_key(group_by: str, group: Group):
    # Named groups alphabetically, priorities in order, the group without a team or policy last.
    if group_by == "priority":
        return (0, group.key or 0, "")
    return (group.key in (None, ""), group.label.lower(), "")


def stopped_clocks(params: ReportParams):
    """Clocks of the period's kinds and ticket types that stopped met or breached in the period: a range of
    sla_clock_stopped_idx (ticket_type, stopped_at) per ticket type."""
    return SlaClock.objects.filter(
        ticket_type__in=params.ticket_types, stopped_at__gte=params.start, stopped_at__lt=params.end,
        kind__in=params.kinds, state__in=STOPPED)


def open_breached_clocks(params: ReportParams):
    """Clocks still running or paused that had breached by the end of the period."""
    return SlaClock.objects.filter(
        ticket_type__in=params.ticket_types, kind__in=params.kinds, state__in=ACTIVE_CLOCK_STATES,
        breached_at__isnull=False, breached_at__lt=params.end)


def sla_report(params: ReportParams, *, sql_percentile: bool | None = None) -> Report:
    """The report's groups and totals in three queries (four on SQLite). `sql_percentile` forces where the
    90th percentile is computed (default: in SQL on PostgreSQL, in Python elsewhere)."""
    if sql_percentile is None:
        sql_percentile = connection.vendor == "postgresql"
    fields = _GROUP_FIELDS[params.group_by]
    groups: dict = {}

    def group_of(row) -> Group:
        key, label = _key_label(params.group_by, row)
        if key not in groups:
            groups[key] = Group(key, label, {k: Figures() for k in params.kinds})
        return groups[key]

    stopped = stopped_clocks(params)
    measures = {"met": Count("id", filter=Q(state=ClockState.MET)),
                "breached": Count("id", filter=Q(state=ClockState.BREACHED)),
                "mean": Avg("elapsed_seconds")}
    if sql_percentile:
        measures["p90"] = PercentileCont("elapsed_seconds", 0.9)
    for row in stopped.values(*fields, "kind").annotate(**measures).order_by():
        figures = group_of(row).figures[row["kind"]]
        figures.met, figures.breached, figures.mean_seconds = row["met"], row["breached"], row["mean"]
        figures.p90_seconds = row.get("p90")

    for row in open_breached_clocks(params).values(*fields, "kind").annotate(n=Count("id")).order_by():
        group_of(row).figures[row["kind"]].open_breached = row["n"]

    totals = {k: Figures() for k in params.kinds}
    for group in groups.values():
        for kind, figures in group.figures.items():
            total = totals[kind]
            if figures.stopped:
                total.mean_seconds = ((total.mean_seconds or 0) * total.stopped
                                      + figures.mean_seconds * figures.stopped) / (total.stopped + figures.stopped)
            total.met += figures.met
            total.breached += figures.breached
            total.open_breached += figures.open_breached

    if sql_percentile:
        for row in stopped.values("kind").annotate(p90=PercentileCont("elapsed_seconds", 0.9)).order_by():
            totals[row["kind"]].p90_seconds = row["p90"]
    else:
        _percentiles_in_python(stopped, params, fields, groups, totals)

    ordered = sorted(groups.values(), key=lambda g: _sort_key(params.group_by, g))
    return Report(params, ordered, totals)


def _percentiles_in_python(stopped, params, fields, groups, totals) -> None:
    """The 90th percentiles where the database has no percentile_cont: the elapsed times in one query."""
    by_group: dict = defaultdict(list)
    by_kind: dict = defaultdict(list)
    for row in stopped.values(*fields, "kind", "elapsed_seconds").order_by("elapsed_seconds").iterator():
        key, _ = _key_label(params.group_by, row)
        by_group[key, row["kind"]].append(row["elapsed_seconds"])
        by_kind[row["kind"]].append(row["elapsed_seconds"])
    for (key, kind), values in by_group.items():
        groups[key].figures[kind].p90_seconds = percentile_cont(values, 0.9)
    for kind, values in by_kind.items():
        totals[kind].p90_seconds = percentile_cont(values, 0.9)


# --- breached tickets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BreachedRow:
    ticket_type: str
    ticket_id: int
    number: str
    title: str
    url: str
    kind: str
    state: str
    priority: int
    team: str
    policy: str
    due_at: datetime | None
    breached_at: datetime
    stopped_at: datetime | None

    @property
    def kind_label(self) -> str:
        return ClockKind(self.kind).label

    def as_dict(self) -> dict:
        return {"ticket_type": self.ticket_type, "ticket_id": self.ticket_id, "number": self.number,
                "title": self.title, "url": self.url, "kind": self.kind, "state": self.state,
                "priority": self.priority, "team": self.team, "policy": self.policy,
                "due_at": _iso(self.due_at), "breached_at": _iso(self.breached_at),
                "stopped_at": _iso(self.stopped_at)}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else timezone.localtime(at).isoformat()


def breached_clocks(params: ReportParams):
    """The period's breached clocks, latest breach first: those that stopped breached in the period, and those
    still open that had breached by its end. Calendars come with them (their intervals and holidays in two
    more queries) to work out each due instant."""
    return (
        SlaClock.objects.filter(ticket_type__in=params.ticket_types, kind__in=params.kinds)
        .filter(Q(state=ClockState.BREACHED, stopped_at__gte=params.start, stopped_at__lt=params.end)
                | Q(state__in=ACTIVE_CLOCK_STATES, breached_at__isnull=False, breached_at__lt=params.end))
        .select_related("team", "calendar")
        .prefetch_related("calendar__intervals", "calendar__holidays")
        .order_by("-breached_at", "-id")
    )


def due_of(clock: SlaClock, cal: engine.Calendar) -> datetime | None:
    """When the clock's target (its last one) was reached: `due_at` while it runs; otherwise the instant in the
    running segment during which its elapsed business time passed the target."""
    if clock.due_at is not None:
        return clock.due_at
    banked = 0.0
    for segment in clock.segments:
        if segment.get("state") != "running":
            continue
        start, seconds = parse_datetime(segment["from"]), segment.get("seconds")
        if seconds is None or banked + seconds >= clock.target_seconds:
            return engine.add_business_time(start, max(0.0, clock.target_seconds - banked), cal)
        banked += seconds
    return None


def _infos(ticket_type: str, ids: list[int]) -> dict[int, TicketInfo]:
    adapter = adapter_for(ticket_type)
    if adapter is None:
        return {}
    many = getattr(adapter, "infos", None)
    if many is not None:
        return many(ids)
    return {i: info for i in ids if (info := adapter.info(i)) is not None}


def breached_rows(clocks) -> list[BreachedRow]:
    """Rows for a page (or chunk) of breached clocks: tickets named by their app in one call per ticket type."""
    clocks = list(clocks)
    ids: dict[str, list[int]] = defaultdict(list)
    for clock in clocks:
        ids[clock.ticket_type].append(clock.ticket_id)
    infos = {tt: _infos(tt, sorted(set(batch))) for tt, batch in ids.items()}
    calendars: dict[int, engine.Calendar] = {}
    rows = []
    for clock in clocks:
        if clock.calendar_id not in calendars:
            calendars[clock.calendar_id] = clock.calendar.as_clock_calendar()
        info = infos[clock.ticket_type].get(clock.ticket_id)
        rows.append(BreachedRow(
            ticket_type=clock.ticket_type, ticket_id=clock.ticket_id, number=info.number if info else "",
            title=info.title if info else "", url=info.url if info else "", kind=clock.kind, state=clock.state,
            priority=clock.priority, team=clock.team.name if clock.team_id else "", policy=clock.policy_name,
            due_at=due_of(clock, calendars[clock.calendar_id]), breached_at=clock.breached_at,
            stopped_at=clock.stopped_at,
        ))
    return rows


# --- CSV --------------------------------------------------------------------------------------------------


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will not read as a formula (servicedesk.exports.neutralise)."""
    return neutralise("" if value is None else str(value))


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def csv_lines(report: Report, *, chunk: int = 500):
    """The report as CSV rows: the groups table, a blank line, then every breached clock of the period (read
    in chunks, each chunk's tickets named in one call per type)."""
    p = report.params
    kinds = p.kinds
    head = [GROUP_BY[p.group_by]]
    for kind in kinds:
        label = ClockKind(kind).label.lower()
        head += [f"{label} stopped", f"{label} met", f"{label} breached", f"{label} compliance %",
                 f"{label} mean minutes", f"{label} p90 minutes", f"{label} open breached"]
    yield head
    for group in [*report.groups, Group(None, "All", report.totals)]:
        line = [_cell(group.label)]
        for kind in kinds:
            f = group.figures[kind]
            line += [f.stopped, f.met, f.breached, "" if f.compliance is None else f.compliance,
                     _minutes(f.mean_seconds), _minutes(f.p90_seconds), f.open_breached]
        yield line
    yield []
    yield ["ticket type", "ticket id", "number", "clock", "state", "priority", "team", "policy", "due",
           "breached", "stopped"]
    for row in breached_stream(p, chunk=chunk):
        yield [row.ticket_type, row.ticket_id, _cell(row.number), row.kind, row.state, row.priority,
               _cell(row.team), _cell(row.policy), _iso(row.due_at) or "", _iso(row.breached_at) or "",
               _iso(row.stopped_at) or ""]


def breached_stream(params: ReportParams, *, chunk: int = 500):
    """Every breached clock of the period as BreachedRows, read through a server-side cursor and named a chunk
    at a time (one call per ticket type per chunk): what the CSV and XLSX downloads write."""
    batch = []
    for clock in breached_clocks(params).iterator(chunk_size=chunk):
        batch.append(clock)
        if len(batch) == chunk:
            yield from breached_rows(batch)
            batch = []
    yield from breached_rows(batch)
