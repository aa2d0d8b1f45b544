"""How people see a ticket's clocks: remaining business time in words, a colour (tone) per clock, the most
urgent clock of a ticket for its queue row, and the segments that explain a deadline.

Reads clocks as `sla.clocks.clocks_of` returns them (calendar selected with each clock), so a page of tickets
costs one query for all their clocks; a running clock's remaining time needs its built calendar, which
`clock_calendar` keeps per calendar revision (no query when fresh). `now` is an argument everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from django.utils.dateparse import parse_datetime

from sla import clock as engine
from sla.clocks import SLA_KINDS, clock_calendar, elapsed_seconds
from sla.models import ClockKind, ClockState, SlaClock

STOPPED_WORDS = {ClockState.MET: "met", ClockState.BREACHED: "breached", ClockState.CANCELLED: "cancelled"}


def duration_words(seconds: float) -> str:
    """A length of business time, short enough for a table cell: "35 min", "2 h 10 min", "2 h", "26 h".
    Counts whole minutes down (a countdown never shows more than is left); under a minute is "< 1 min".
    From a day of business time on, minutes are left out."""
    minutes = int(abs(seconds)) // 60
    if minutes < 1:
        return "< 1 min"
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if rest and hours < 24:
        return f"{hours} h {rest} min"
    return f"{hours} h"


def remaining_words(state: str, remaining: float, *, left: bool = False) -> str:
    """What is left of a clock: "2 h 10 min" ("2 h 10 min left" with `left`), "late 35 min",
    "paused · 3 h left", "paused · late 20 min"; a stopped clock says "met", "breached" or "cancelled"."""
    if state in STOPPED_WORDS:
        return STOPPED_WORDS[state]
    late = remaining < 0
    words = f"late {duration_words(remaining)}" if late else duration_words(remaining)
    if state == ClockState.PAUSED:
        return f"paused · {words}" if late else f"paused · {words} left"
    return words if late or not left else f"{words} left"


@dataclass(frozen=True)
class Segment:
    state: str  # running or paused
    start: datetime
    end: datetime | None  # None: the current segment
    seconds: int  # business seconds (until now for the current segment)
    reason: str
    ended_by: str = ""

    @property
    def current(self) -> bool:
        return self.end is None

    @property
    def words(self) -> str:
        return duration_words(self.seconds)


class ClockView:
    """One clock as a person reads it at `now`."""

    def __init__(self, clock: SlaClock, now: datetime):
        self.clock = clock
        self.now = now
        self.kind = clock.kind
        self.state = clock.state
        self.due_at = clock.due_at if clock.state == ClockState.RUNNING else None
        self.breached = clock.breached_at is not None
        self.target_seconds = clock.target_seconds
        running = clock.state == ClockState.RUNNING and clock.running_since is not None
        elapsed = elapsed_seconds(clock, self._calendar, now) if running else clock.elapsed_seconds
        self.elapsed_seconds = int(elapsed)
        self.remaining_seconds = int(clock.target_seconds - elapsed)

    @cached_property
    def _calendar(self) -> engine.Calendar:
        return clock_calendar(self.clock.calendar)

    @property
    def active(self) -> bool:
        return self.state in (ClockState.RUNNING, ClockState.PAUSED)

    @property
    def label(self) -> str:
        """"First response", "Resolution", "OLA · Network"."""
        if self.kind == ClockKind.OLA:
            team = self.clock.team
            return f"OLA · {team.name}" if team is not None else "OLA"
        return ClockKind(self.kind).label

    @property
    def state_label(self) -> str:
        return ClockState(self.state).label

    @property
    def policy_name(self) -> str:
        return self.clock.policy_name

    @property
    def late(self) -> bool:
        return self.breached or (self.active and self.remaining_seconds < 0)

    @property
    def tone(self) -> str:
        """The colour of the clock: ok, warning, breached, paused (active clocks), met or cancelled (stopped)."""
        if self.state == ClockState.MET:
            return "met"
        if self.state == ClockState.CANCELLED:
            return "cancelled"
        if self.state == ClockState.BREACHED or self.late:
            return "breached"
        if self.state == ClockState.PAUSED:
            return "paused"
        threshold = self.target_seconds * self.clock.warning_percent / 100
        # The sweep marks the warning; until its next run the threshold itself says so.
        if self.clock.warned_at is not None or self.elapsed_seconds >= threshold:
            return "warning"
        return "ok"

    @property
    def words(self) -> str:
        return remaining_words(self.state, self.remaining_seconds)

    @property
    def words_left(self) -> str:
        return remaining_words(self.state, self.remaining_seconds, left=True)

    @property
    def remaining_words(self) -> str:
        return duration_words(max(0, self.remaining_seconds))

    @property
    def late_words(self) -> str:
        """How late the clock is ("" when it is not)."""
        return duration_words(self.remaining_seconds) if self.remaining_seconds < 0 else ""

    @property
    def target_words(self) -> str:
        return duration_words(self.target_seconds)

    @property
    def elapsed_words(self) -> str:
        return duration_words(self.elapsed_seconds)

    @property
    def progress(self) -> int:
        """Elapsed share of the target in percent, capped at 100 (for a <meter>)."""
        if not self.target_seconds:
            return 100
        return max(0, min(100, round(100 * self.elapsed_seconds / self.target_seconds)))

    @cached_property
    def segments(self) -> list[Segment]:
        """The running and paused stretches, oldest first; the current one counted until `now`."""
        found = []
        for raw in self.clock.segments or []:
            start = parse_datetime(raw["from"])
            end = parse_datetime(raw["to"]) if raw.get("to") else None
            if end is None:
                upto = self.clock.stopped_at or self.now
                seconds = engine.business_seconds_between(start, upto, self._calendar) if upto > start else 0
            else:
                seconds = raw.get("seconds") or 0
            found.append(Segment(state=raw["state"], start=start, end=end, seconds=int(seconds),
                                 reason=raw.get("reason", ""), ended_by=raw.get("ended_by", "")))
        return found

    @property
    def paused_words(self) -> str:
        """Business time spent paused, "" when never paused."""
        seconds = sum(s.seconds for s in self.segments if s.state == "paused")
        return duration_words(seconds) if seconds >= 60 else ""


def clock_views(clocks, now: datetime, *, ola: bool = True) -> list[ClockView]:
    """Views of a ticket's clocks in `clocks_of` order; without OLA clocks when `ola` is false (requesters)."""
    return [ClockView(c, now) for c in clocks if ola or c.kind != ClockKind.OLA]


def most_urgent(views: list[ClockView]) -> ClockView | None:
    """The SLA clock a queue row shows: the running one due first (the ticket's `sla_due_at`), else the paused
    one with least left, else the last stopped resolution (or first response) clock; None without SLA clocks.
    OLA clocks are the team's own business and stay on the ticket page."""
    sla = [v for v in views if v.kind in SLA_KINDS]
    running = [v for v in sla if v.state == ClockState.RUNNING and v.due_at is not None]
    if running:
        return min(running, key=lambda v: v.due_at)
    paused = [v for v in sla if v.state == ClockState.PAUSED]
    if paused:
        return min(paused, key=lambda v: v.remaining_seconds)
    return next((v for v in reversed(sla) if v.kind == ClockKind.RESOLUTION), sla[-1] if sla else None)
