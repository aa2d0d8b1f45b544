"""The shapes the insights pages, exports and e-mails read (built by insights.dashboard and insights.measures).

Plain frozen dataclasses: no ORM, so templates, the CSV/XLSX export and the weekly e-mail all read the same
figures. Durations are hours (float), rates percentages (0-100, one decimal), None where nothing was measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from servicedesk.periods import day_after, day_start


@dataclass(frozen=True)
class Scope:
    """What a dashboard, an export, a measure or an e-mail covers: whole local days `date_from`..`date_to`
    (both included), the teams the viewer may see (None: every team and tickets with none: admins), and
    optionally one chosen team and one service."""

    date_from: date
    date_to: date
    team_ids: tuple[int, ...] | None = None
    team_id: int | None = None  # the team chosen in the filter (then team_ids == (team_id,))
    service_id: int | None = None
    team_label: str = "All teams"
    service_label: str = "All services"

    @property
    def start(self) -> datetime:
        return day_start(self.date_from)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return day_after(self.date_to)

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1

    def shifted(self, days: int) -> Scope:
        """The same scope `days` earlier (negative: later)."""
        return Scope(self.date_from - timedelta(days=days), self.date_to - timedelta(days=days), self.team_ids,
                     self.team_id, self.service_id, self.team_label, self.service_label)

    def previous(self) -> Scope:
        """The period of the same length just before this one (for "vs previous period")."""
        return self.shifted(self.days)

    def query(self) -> dict[str, str]:
        """As query-string values (links, exports)."""
        values = {"from": self.date_from.isoformat(), "to": self.date_to.isoformat()}
        if self.team_id:
            values["team"] = str(self.team_id)
        if self.service_id:
            values["service"] = str(self.service_id)
        return values

    @property
    def label(self) -> str:
        return f"{self.date_from:%-d %b %Y} – {self.date_to:%-d %b %Y} · {self.team_label} · {self.service_label}"


@dataclass(frozen=True)
class Measure:
    """One measure the desk tracks (insights.measures.MEASURES): the dashboard's tiles, the improvement
    register's before/after and the weekly e-mail read these."""

    key: str
    label: str
    unit: str  # "count" | "percent" | "hours" | "score"
    better: str  # "higher" | "lower" | "" (neither: a volume)
    help: str = ""


@dataclass(frozen=True)
class Tile:
    """A headline figure: the measure's value over the scope and over the period before."""

    measure: Measure
    value: float | None
    previous: float | None
    display: str  # the value as people read it: "87.5 %", "3 h 20 min", "4.2 / 5", "–"
    detail: str = ""  # e.g. "35 of 40 resolved incidents"

    @property
    def trend(self) -> str:
        """"better" | "worse" | "same" | "" (nothing to compare, or a volume)."""
        if self.value is None or self.previous is None or not self.measure.better:
            return ""
        if abs(self.value - self.previous) < 1e-9:
            return "same"
        up = self.value > self.previous
        return "better" if up == (self.measure.better == "higher") else "worse"


@dataclass(frozen=True)
class DayPoint:
    """Backlog over time: one local day."""

    day: date
    opened: int
    ended: int  # left the backlog: resolved, fulfilled, rejected, cancelled
    backlog: int  # open at the end of the day


@dataclass(frozen=True)
class TimeRow:
    """Time to respond and to resolve for one ticket type and priority over the period (hours)."""

    kind: str  # "incident" | "request"
    kind_label: str
    priority: int
    priority_label: str
    resolved: int
    resolve_mean: float | None
    resolve_p90: float | None
    responded: int
    respond_mean: float | None  # requests have no first-response time: None
    respond_p90: float | None


@dataclass(frozen=True)
class SlaPoint:
    """SLA clocks stopped on one day (or week, for long periods)."""

    day: date
    met: int
    breached: int

    @property
    def compliance(self) -> float | None:
        total = self.met + self.breached
        return round(100 * self.met / total, 1) if total else None


@dataclass(frozen=True)
class Rate:
    """A ratio as a percentage, with its parts (so pages can say "35 of 40")."""

    numerator: int
    denominator: int

    @property
    def percent(self) -> float | None:
        return round(100 * self.numerator / self.denominator, 1) if self.denominator else None


@dataclass(frozen=True)
class Comment:
    number: str
    score: int
    comment: str
    at: datetime
    url: str  # the ticket's agent page


@dataclass(frozen=True)
class Satisfaction:
    rated: int
    average: float | None  # 1-5, two decimals
    distribution: tuple[int, int, int, int, int]  # ratings of 1, 2, 3, 4, 5
    comments: tuple[Comment, ...] = ()  # latest first, at most 5


@dataclass(frozen=True)
class CountRow:
    """One line of a "by ..." table: incidents by service, by source, top categories."""

    key: str
    label: str
    opened: int
    resolved: int = 0


@dataclass(frozen=True)
class WorkloadRow:
    user_id: int
    name: str
    open_now: int  # incidents and requests assigned now, not ended
    resolved: int  # resolved incidents and fulfilled requests in the period


@dataclass(frozen=True)
class Dashboard:
    scope: Scope
    tiles: tuple[Tile, ...]
    backlog: tuple[DayPoint, ...]
    times: tuple[TimeRow, ...]
    sla: tuple[SlaPoint, ...]
    sla_bucket: str  # "day" | "week"
    fcr: Rate
    reopen: Rate
    deflection: Rate
    automation: Rate
    satisfaction: Satisfaction
    by_service: tuple[CountRow, ...]
    by_source: tuple[CountRow, ...]  # monitoring vs people (portal, e-mail, phone, API)
    categories: tuple[CountRow, ...]  # top 10 incident categories by opened
    workload: tuple[WorkloadRow, ...]
    rolled_at: datetime | None  # when the rollup last ran (figures of earlier days are as of then)
    extras: dict = field(default_factory=dict)
