"""A Dashboard built by hand (insights.types), so the page's rendering is tested apart from the figures."""

from datetime import datetime, time, timedelta

from django.utils import timezone

from insights.types import (
    Comment,
    CountRow,
    Dashboard,
    DayPoint,
    Measure,
    Rate,
    Satisfaction,
    Scope,
    SlaPoint,
    Tile,
    TimeRow,
    WorkloadRow,
)


def handmade_dashboard(*, days: int = 7, empty: bool = False) -> Dashboard:
    today = timezone.localdate()
    scope = Scope(today - timedelta(days=days - 1), today, None, None, None, "All teams", "All services")
    tiles = (
        Tile(Measure("opened", "Tickets opened", "count", ""), 40.0, 32.0, "40", "31 incidents, 9 requests"),
        Tile(Measure("resolve_mean", "Mean time to resolve", "hours", "lower"), 5.5, 4.0, "5 h 30 min"),
        Tile(Measure("sla_compliance", "SLA compliance", "percent", "higher", "Clocks that met their target"),
             87.5, 80.0, "87.5 %", "35 of 40 clocks"),
        Tile(Measure("csat_average", "Satisfaction", "score", "higher"), 4.2, 4.2, "4.2 / 5"),
        Tile(Measure("fcr_rate", "First-contact resolution", "percent", "higher", "Resolved with no hand-off"),
             None, 50.0, "–"),
    )
    if empty:
        return Dashboard(scope, tiles, (), (), (), "day", Rate(0, 0), Rate(0, 0), Rate(0, 0), Rate(0, 0),
                         Satisfaction(0, None, (0, 0, 0, 0, 0)), (), (), (), (), None)
    backlog = tuple(DayPoint(scope.date_from + timedelta(days=i), 5 + i, 3 + i, 20 + 2 * i) for i in range(days))
    times = (
        TimeRow("incident", "Incident", 1, "P1", 4, 2.5, 6.0, 4, 0.25, 0.5),
        TimeRow("incident", "Incident", 3, "P3", 10, 30.0, 52.0, 9, 1.5, 3.0),
        TimeRow("request", "Request", 3, "P3", 6, 20.0, 40.0, 0, None, None),
    )
    sla = tuple(SlaPoint(scope.date_from + timedelta(days=i), 7, 1 if i % 2 else 0) for i in range(days))
    at = timezone.make_aware(datetime.combine(today, time(9, 30)))
    comments = (
        Comment("INC-000042", 2, "Took three days <b>to call</b> back", at, "/agent/incidents/INC-000042/"),
        Comment("REQ-000007", 5, "Laptop arrived the next morning", at - timedelta(hours=3),
                "/agent/requests/REQ-000007/"),
    )
    return Dashboard(
        scope=scope, tiles=tiles, backlog=backlog, times=times, sla=sla, sla_bucket="day",
        fcr=Rate(21, 30), reopen=Rate(3, 30), deflection=Rate(12, 48), automation=Rate(5, 9),
        satisfaction=Satisfaction(10, 3.9, (1, 1, 1, 4, 3), comments),
        by_service=(CountRow("1", "Email", 12, 10), CountRow("2", "Payroll", 7, 7)),
        by_source=(CountRow("monitoring", "Monitoring", 9, 9), CountRow("people", "People", 22, 18)),
        categories=(CountRow("network", "Network", 8, 6), CountRow("hardware", "Hardware", 5, 5)),
        workload=(WorkloadRow(1, "Agnes Agent", 6, 11), WorkloadRow(2, "Bob Keller", 2, 14)),
        rolled_at=timezone.make_aware(datetime.combine(today, time(2, 5))),
    )
