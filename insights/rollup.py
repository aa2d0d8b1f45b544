"""The daily rollup the dashboard adds up: DailyRollup and DailyFacet rows, one per local day, ticket type,
team and service (and facet value), counted from the tickets in SQL (GROUP BY the local date: date_trunc /
TruncDate in the site's time zone, COUNT ... FILTER, SUM of datetime differences).

`rollup_days(days)` recounts whole days: it deletes their rows and writes them again in one transaction, so
a rerun changes nothing and a day is never half-counted. `rollup_run()` (beat, every INSIGHTS_ROLLUP_SECONDS)
recounts the last INSIGHTS_ROLLUP_RECENT_DAYS days (longer than the reopen windows of requests and of resolved
incidents before they close) and the days of whatever changed since its previous run (tickets, ratings, SLA
clocks and deflections updated since then, read through their indexes), so a run costs what changed, not the
history; the first run counts everything. A change that moves an older day without leaving a trace on it (a
ticket moved to another team, an incident reopened long after it was resolved) is caught by the nightly
recount of everything (`rollup_rebuild`, beat "insights-rollup-rebuild"; `manage.py insights_rollup
--rebuild`). Each run also works out the times of the dashboard's standard windows (WindowTimes).

Reads the practices' tables (incidents, requests, SLA clocks, ratings, knowledge deflections); never writes
them. Each figure is attributed to the day of the event it counts (see insights.models.DailyRollup).
"""

from __future__ import annotations

import time as clock
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from incidents.models import Channel, Incident
from incidents.states import Status as IncidentStatus
from insights.models import DailyFacet, DailyRollup, Facet, RollupKind, RollupState, WindowTimes
from knowledge.models import Deflection, DeflectionOutcome
from requests_app.models import Approval, ServiceRequest
from requests_app.states import Status as RequestStatus
from servicedesk.locks import advisory_xact_lock
from servicedesk.models import Rating
from servicedesk.periods import day_after, day_start
from sla.models import ClockKind, ClockState, SlaClock

INCIDENT_DONE = (IncidentStatus.RESOLVED, IncidentStatus.CLOSED)
REQUEST_DELIVERED = (RequestStatus.FULFILLED, RequestStatus.CLOSED)
REQUEST_DROPPED = (RequestStatus.REJECTED, RequestStatus.CANCELLED)
CHUNK_DAYS = 31

COUNTERS = [f.name for f in DailyRollup._meta.get_fields()
            if f.name not in ("id", "day", "kind", "team_id", "service_id")]


def _day(field: str):
    return TruncDate(field, tzinfo=timezone.get_current_timezone())


def _ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as contiguous (first, last) ranges of at most CHUNK_DAYS days."""
    out: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if out and (day - out[-1][1]).days == 1 and (day - out[-1][0]).days < CHUNK_DAYS:
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


class _Sheet:
    """The rows of one range, keyed as the tables are, filled by the queries below."""

    def __init__(self):
        self.rows: dict[tuple, dict] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
        self.facets: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])

    def add(self, kind: str, rows, **columns):
        """Add aggregated rows (dicts with day, team, service and the named aggregates) to the columns."""
        for row in rows:
            target = self.rows[(row["day"], kind, row["t_id"] or 0, row["s_id"] or 0)]
            for column, source in columns.items():
                value = row[source]
                target[column] += value or 0

    def add_facet(self, kind: str, facet: str, column: int, rows):
        for row in rows:
            key = row["key"]
            key = "" if key is None else str(key)
            self.facets[(row["day"], kind, row["t_id"] or 0, row["s_id"] or 0, facet, key)][column] += row["n"]


def _grouped(qs, day_field: str, service: str | None):
    """Rows of `qs` grouped by the local day of `day_field`, the ticket's team and its service (0: a ticket type
    with no service)."""
    return qs.values(day=_day(day_field), t_id=F("assignment_group_id"),
                     s_id=F(service) if service else Value(0, output_field=IntegerField()))


def _add_facets(sheet: _Sheet, kind: str, service: str | None, opened, done, done_at: str, fields) -> None:
    """Opened (by created day) and resolved (by `done_at` day) tickets per value of each (facet, field)."""
    for facet, field in fields:
        for column, (qs, day_field) in enumerate(((opened, "created_at"), (done, done_at))):
            sheet.add_facet(kind, facet, column, _grouped(qs, day_field, service).annotate(key=F(field),
                                                                                         n=Count("id")))


def _count_incidents(sheet: _Sheet, start: datetime, end: datetime) -> None:
    base = Incident.objects.all()
    opened = base.filter(created_at__gte=start, created_at__lt=end)
    sheet.add(RollupKind.INCIDENT, _grouped(opened, "created_at", "service_id").annotate(
        n=Count("id"), monitoring=Count("id", filter=Q(channel=Channel.MONITORING))),
        opened="n", opened_monitoring="monitoring")
    done = base.filter(status__in=INCIDENT_DONE, resolved_at__gte=start, resolved_at__lt=end)
    by_people = ~Q(channel=Channel.MONITORING)
    sheet.add(RollupKind.INCIDENT, _grouped(done, "resolved_at", "service_id").annotate(
        n=Count("id"),
        first=Count("id", filter=Q(first_contact=True, reopen_count=0) & by_people),
        reopened=Count("id", filter=Q(reopen_count__gt=0)),
        people=Count("id", filter=by_people)),
        resolved="n", ended="n", first_contact="first", reopened="reopened", resolved_people="people")
    # Cancelled: closed_at is stamped when an incident is cancelled (and when it is closed).
    cancelled = base.filter(status=IncidentStatus.CANCELLED, closed_at__gte=start, closed_at__lt=end)
    sheet.add(RollupKind.INCIDENT, _grouped(cancelled, "closed_at", "service_id").annotate(
        n=Count("id")), ended="n")
    _add_facets(sheet, RollupKind.INCIDENT, "service_id", opened, done, "resolved_at",
                ((Facet.CATEGORY, "category_id"), (Facet.CHANNEL, "channel"), (Facet.ASSIGNEE, "assignee_id")))


def _count_requests(sheet: _Sheet, start: datetime, end: datetime) -> None:
    base = ServiceRequest.objects.all()
    opened = base.filter(created_at__gte=start, created_at__lt=end)
    sheet.add(RollupKind.REQUEST, _grouped(opened, "created_at", None).annotate(
        n=Count("id")), opened="n")
    # No human step: delivered by the item's automated handler, and no one had to approve it.
    automated = Q(fulfilled_by_handler=True) & ~Exists(Approval.objects.filter(request=OuterRef("pk")))
    done = base.filter(status__in=REQUEST_DELIVERED, fulfilled_at__gte=start, fulfilled_at__lt=end)
    sheet.add(RollupKind.REQUEST, _grouped(done, "fulfilled_at", None).annotate(
        n=Count("id"), auto=Count("id", filter=automated)),
        resolved="n", ended="n", automated="auto")
    # Rejected, cancelled, or closed undelivered: on the day it was closed (cancel and close stamp closed_at;
    # a rejection, its last change).
    ended_at = Coalesce("closed_at", "updated_at")
    dropped = (base.filter(Q(status__in=REQUEST_DROPPED) | Q(status=RequestStatus.CLOSED, fulfilled_at__isnull=True))
               .annotate(ended_at=ended_at).filter(ended_at__gte=start, ended_at__lt=end))
    sheet.add(RollupKind.REQUEST, _grouped(dropped, "ended_at", None).annotate(
        n=Count("id")), ended="n")
    _add_facets(sheet, RollupKind.REQUEST, None, opened, done, "fulfilled_at", ((Facet.ASSIGNEE, "assignee_id"),))


_TICKETS = {RollupKind.INCIDENT: (Incident, "service_id"), RollupKind.REQUEST: (ServiceRequest, None)}


def _ticket_of(kind: str, column: str, id_field: str):
    model, _ = _TICKETS[kind]
    return Subquery(model.objects.filter(id=OuterRef(id_field)).values(column)[:1])


def _count_sla_and_ratings(sheet: _Sheet, start: datetime, end: datetime) -> None:
    for kind, (model, service_field) in _TICKETS.items():
        team = _ticket_of(kind, "assignment_group_id", "ticket_id")
        service = _ticket_of(kind, service_field, "ticket_id") if service_field else Value(0)
        clocks = (SlaClock.objects.filter(ticket_type=kind, stopped_at__gte=start, stopped_at__lt=end,
                                          kind__in=(ClockKind.FIRST_RESPONSE, ClockKind.RESOLUTION),
                                          state__in=(ClockState.MET, ClockState.BREACHED))
                  .values(day=_day("stopped_at"), t_id=team, s_id=service)
                  .annotate(met=Count("id", filter=Q(state=ClockState.MET)),
                            breached=Count("id", filter=Q(state=ClockState.BREACHED))))
        sheet.add(kind, clocks, sla_met="met", sla_breached="breached")
        ct = ContentType.objects.get_for_model(model)
        team = _ticket_of(kind, "assignment_group_id", "object_id")
        service = _ticket_of(kind, service_field, "object_id") if service_field else Value(0)
        ratings = (Rating.objects.filter(content_type=ct, created_at__gte=start, created_at__lt=end)
                   .values(day=_day("created_at"), t_id=team, s_id=service)
                   .annotate(n=Count("id"), total=Sum("score"),
                             **{f"s{i}": Count("id", filter=Q(score=i)) for i in range(1, 6)}))
        sheet.add(kind, ratings, rated="n", rating_sum="total",
                  **{f"rating_{i}": f"s{i}" for i in range(1, 6)})


def _count_portal(sheet: _Sheet, start: datetime, end: datetime) -> None:
    rows = (Deflection.objects.filter(created_at__gte=start, created_at__lt=end)
            .values(day=_day("created_at"), t_id=Value(0), s_id=Value(0))
            .annotate(solved=Count("id", filter=Q(outcome=DeflectionOutcome.SOLVED)),
                      submitted=Count("id", filter=Q(outcome=DeflectionOutcome.SUBMITTED))))
    sheet.add(RollupKind.PORTAL, rows, deflected="solved", submitted_anyway="submitted")


def rollup_days(days: Iterable[date]) -> int:
    """Recount `days` (local dates); returns how many days were written. Safe to run twice or concurrently
    (one writer at a time per database: an advisory lock). Days before `tickets_complete_from()` are left as they
    were counted: retention removed tickets of those days, so a recount would lose them (their figures stay)."""
    from servicedesk.retention import tickets_complete_from

    complete_from = tickets_complete_from()
    if complete_from is not None:
        days = [day for day in days if day >= complete_from]
    written = 0
    for first, last in _ranges(days):
        start, end = day_start(first), day_after(last)
        with transaction.atomic():
            # Count and write under one lock: a run that started earlier can never write older counts over
            # those of a run that counted later.
            advisory_xact_lock("insights.rollup")
            sheet = _Sheet()
            _count_incidents(sheet, start, end)
            _count_requests(sheet, start, end)
            _count_sla_and_ratings(sheet, start, end)
            _count_portal(sheet, start, end)
            DailyRollup.objects.filter(day__gte=first, day__lte=last).delete()
            DailyFacet.objects.filter(day__gte=first, day__lte=last).delete()
            DailyRollup.objects.bulk_create(
                [DailyRollup(day=day, kind=kind, team_id=team, service_id=service, **values)
                 for (day, kind, team, service), values in sheet.rows.items() if any(values.values())],
                batch_size=2000)
            DailyFacet.objects.bulk_create(
                [DailyFacet(day=day, kind=kind, team_id=team, service_id=service, facet=facet, key=key,
                            opened=counts[0], resolved=counts[1])
                 for (day, kind, team, service, facet, key), counts in sheet.facets.items()],
                batch_size=2000)
        written += (last - first).days + 1
    return written


def _local_days(qs, *fields: str) -> set[date]:
    days: set[date] = set()
    for field in fields:
        days.update(d for d in qs.filter(**{f"{field}__isnull": False}).values_list(_day(field), flat=True)
                    .distinct() if d)
    return days


def changed_days(since: datetime) -> set[date]:
    """The local days whose figures may have changed since `since`: those of the tickets, ratings, clocks and
    deflections updated since then (each read through an index on its update time)."""
    days = _local_days(Incident.objects.filter(updated_at__gte=since), "created_at", "resolved_at", "closed_at")
    days |= _local_days(ServiceRequest.objects.filter(updated_at__gte=since), "created_at", "fulfilled_at",
                        "closed_at", "updated_at")
    days |= _local_days(Rating.objects.filter(updated_at__gte=since), "created_at")
    days |= _local_days(SlaClock.objects.filter(updated_at__gte=since, stopped_at__isnull=False), "stopped_at")
    days |= _local_days(Deflection.objects.filter(updated_at__gte=since), "created_at")
    return days


def first_day() -> date | None:
    """The local day of the earliest ticket, rating or suggestion (where a full rebuild starts)."""
    candidates = [
        Incident.objects.order_by("created_at").values_list("created_at", flat=True).first(),
        ServiceRequest.objects.order_by("created_at").values_list("created_at", flat=True).first(),
        Deflection.objects.order_by("created_at").values_list("created_at", flat=True).first(),
    ]
    found = [timezone.localtime(c).date() for c in candidates if c]
    return min(found) if found else None


def window_times_refresh(today: date) -> int:
    """Work out the times of the dashboard's standard windows up to `today` (insights.measures
    .window_times_rows) and replace what was stored; returns the rows written."""
    from insights.measures import window_times_rows

    rows = window_times_rows(today)
    with transaction.atomic():
        WindowTimes.objects.all().delete()
        WindowTimes.objects.bulk_create([WindowTimes(**row) for row in rows], batch_size=2000)
    return len(rows)


def _recorded(now: datetime, started: float, written: int) -> int:
    window_times_refresh(timezone.localtime(now).date())
    RollupState.objects.update_or_create(pk=1, defaults={
        "changes_seen_until": now, "last_run_at": timezone.now(), "last_run_days": written,
        "last_run_ms": int((clock.monotonic() - started) * 1000)})
    return written


def rollup_rebuild(*, since: date | None = None, now: datetime | None = None) -> int:
    """Recount every day from `since` (default: the first ticket's) to today; later runs then recount only
    what changed after this one started."""
    now, started = now or timezone.now(), clock.monotonic()
    today = timezone.localtime(now).date()
    since = since or first_day() or today
    written = rollup_days(since + timedelta(days=i) for i in range((today - since).days + 1))
    return _recorded(now, started, written)


# Changes committed this long after their updated_at are still seen by the next run.
SEEN_MARGIN = timedelta(minutes=2)


def rollup_run(*, now: datetime | None = None) -> int:
    """The beat task's work: recount the recent days and the days of what changed since the last run; the
    first run recounts everything. Returns the number of days written."""
    now, started = now or timezone.now(), clock.monotonic()
    seen = RollupState.objects.filter(pk=1).values_list("changes_seen_until", flat=True).first()
    if seen is None:
        return rollup_rebuild(now=now)
    today = timezone.localtime(now).date()
    recent = {today - timedelta(days=i) for i in range(settings.INSIGHTS_ROLLUP_RECENT_DAYS)}
    written = rollup_days(recent | {d for d in changed_days(seen - SEEN_MARGIN) if d <= today})
    return _recorded(now, started, written)


def rolled_at() -> datetime | None:
    return RollupState.objects.filter(pk=1).values_list("last_run_at", flat=True).first()

