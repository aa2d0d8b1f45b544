"""What if: the deadlines of the open tickets a policy or a calendar governs, as they are and as they would be
under an edited, unsaved configuration. Admin's "Preview changes" shows them side by side before a save.

For each active clock (running or paused) the new deadline is worked out like sla.clocks does at a re-target:
the business time the clock ran before its current running segment is counted again on the new calendar
(from its segments' instants; kept as stored when the calendar does not change), the target for its priority
and kind is taken from the edited policy, and what remains is added from the start of the running segment. A
paused clock has no deadline: it shows its remaining business time instead. A clock the edited policy no
longer covers (no target for its priority, another priority or ticket type, inactive) loses its SLA.

Nothing here writes. Pause statuses and the service or organisation a policy matches depend on each ticket's
facts, which `sla` does not read: the preview keeps each clock running or paused as it is, and leaves the
matching to the ticket's next change (sla.clocks.clocks_sync). Ticket apps are reached only through
sla.registry's adapters, for the number and title of the rows shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from django.utils import timezone

from sla import clock as engine
from sla.clocks import clock_calendar, recount_elapsed
from sla.models import (
    ACTIVE_CLOCK_STATES,
    PRIORITY_CHOICES,
    ClockKind,
    ClockState,
    SlaClock,
    build_clock_calendar,
)
from sla.registry import TicketInfo, adapter_for, ticket_types

ROW_LIMIT = 200
PRIORITY_LABELS = dict(PRIORITY_CHOICES)


@dataclass(frozen=True)
class PolicyDraft:
    """A policy as edited: its calendar, its targets in seconds (priority -> {clock kind: seconds}), and what
    decides which clocks it keeps."""

    calendar: engine.Calendar
    targets: Mapping[int, Mapping[str, int]]
    warning_percent: int
    ticket_type: str | None = None  # None: as each clock's
    priority: int | None = None  # the policy's priority filter; None: any
    active: bool = True
    calendar_id: int | None = None  # the policy's calendar; None: each clock's own

    def plan(self, clock: SlaClock) -> Plan:
        def lost(why):
            return Plan(self.calendar, None, self.warning_percent, why, self.calendar_id)

        if not self.active:
            return lost("The policy would be inactive")
        if self.ticket_type is not None and self.ticket_type != clock.ticket_type:
            return lost(f"The policy would apply to {self.ticket_type}")
        if self.priority is not None and self.priority != clock.priority:
            return lost(f"The policy would apply to P{self.priority} only")
        target = self.targets.get(clock.priority, {}).get(clock.kind)
        if target is None:
            return lost(f"No P{clock.priority} target in the policy")
        return Plan(self.calendar, target, self.warning_percent, calendar_id=self.calendar_id)


@dataclass(frozen=True)
class Plan:
    """What one clock would count on: calendar, target seconds (None: the clock loses its SLA, `lost` says
    why) and warning percent."""

    calendar: engine.Calendar
    target_seconds: int | None
    warning_percent: int
    lost: str = ""
    # The id of the calendar counted on: the clock's own (perhaps edited), or another one a policy moves it to.
    calendar_id: int | None = None


@dataclass(frozen=True)
class Outcome:
    """One clock, now and after the change. A running clock has deadlines (`old_due`, `new_due`); a paused one
    has remaining business seconds instead (`old_remaining`, `new_remaining`). `shift_seconds` is new minus
    old (positive: later / more time), wall-clock seconds for a running clock, business seconds for a paused
    one; None when the clock would lose its SLA."""

    clock: SlaClock
    old_due: datetime | None
    new_due: datetime | None
    old_remaining: float | None
    new_remaining: float | None
    shift_seconds: float | None
    lost: str
    late_before: bool  # breached already (marked, or its stored deadline has passed)
    late_after: bool  # late at `now` under the new configuration
    warns_after: bool  # the new warning threshold has passed (not warned yet, not late)
    info: TicketInfo | None = None

    @property
    def paused(self) -> bool:
        return self.clock.state == ClockState.PAUSED

    @property
    def becomes_late(self) -> bool:
        return self.late_after and not self.late_before

    @property
    def kind_label(self) -> str:
        return ClockKind(self.clock.kind).label

    @property
    def priority_label(self) -> str:
        return PRIORITY_LABELS.get(self.clock.priority, f"P{self.clock.priority}")

    @property
    def ticket_type_label(self) -> str:
        return ticket_types().get(self.clock.ticket_type, self.clock.ticket_type)

    @property
    def direction(self) -> str:
        """"lost", "later", "earlier" or "same" (within a minute)."""
        if self.shift_seconds is None:
            return "lost"
        if abs(self.shift_seconds) < 60:
            return "same"
        return "later" if self.shift_seconds > 0 else "earlier"

    @property
    def shift_text(self) -> str:
        if self.direction == "lost":
            return "Loses its SLA"
        if self.direction == "same":
            return "No change"
        amount = duration_text(abs(self.shift_seconds), days=not self.paused)
        if self.paused:
            return f"{amount} {'more' if self.shift_seconds > 0 else 'less'} time"
        return f"{amount} {self.direction}"

    @property
    def old_remaining_text(self) -> str:
        return _remaining_text(self.old_remaining)

    @property
    def new_remaining_text(self) -> str:
        return _remaining_text(self.new_remaining)

    @property
    def note(self) -> str:
        if self.lost:
            return f"{self.lost}: the clock would stop."
        if self.becomes_late:
            return "Breached at once."
        if self.late_before and self.late_after:
            return "Already breached."
        if self.late_before:
            return "Already breached; the mark stays."
        if self.warns_after:
            return "Past the warning threshold at once."
        return ""


@dataclass(frozen=True)
class WhatIf:
    """The outcomes, largest shift first, `rows` the first `limit` of them (with ticket info), `more` how many
    were left out."""

    rows: list[Outcome]
    total: int
    more: int
    now: datetime
    later: int = 0
    earlier: int = 0
    late: int = 0  # breached at once by the change
    lost: int = 0

    @property
    def changed(self) -> int:
        return self.later + self.earlier + self.lost

    @property
    def same(self) -> int:
        return self.total - self.changed


def duration_text(seconds: float, *, days: bool = True) -> str:
    """3 d 4 h, 5 h 20 min, 45 min, under a minute. `days=False` for business time (a business day is not
    24 h): hours only."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if days and hours >= 24:
        whole_days, hours = divmod(hours, 24)
        return f"{whole_days} d {hours} h" if hours else f"{whole_days} d"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _remaining_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds <= 0:
        return f"{duration_text(-seconds, days=False)} over" if seconds < -30 else "none left"
    return f"{duration_text(seconds, days=False)} left"


def draft_calendar(*, tz: str, is_24x7: bool, intervals: Iterable = (), holidays: Iterable = ()) -> engine.Calendar:
    """The pure calendar of an edited BusinessCalendar: intervals as (weekday, start, end), holidays as dates.
    Raises ValueError (from sla.clock) for a calendar the clocks cannot count on, e.g. without hours."""
    return build_clock_calendar(tz, is_24x7, intervals, holidays)


def _counted(clock: SlaClock, plan: Plan, current: engine.Calendar, now: datetime) -> tuple[datetime, float]:
    """From when, and with how much elapsed, the clock would count on under `plan`, as sla.clocks does it.

    Its own calendar, edited: the stretches that ran on it are counted again (recount_elapsed) and the rest
    runs from the current segment's start. Another calendar (the policy moves it): what ran so far is kept,
    the current segment up to now counted on the old calendar, and from now on the new one counts."""
    running = clock.state == ClockState.RUNNING and clock.running_since is not None
    if plan.calendar_id is None or plan.calendar_id == clock.calendar_id:
        elapsed = clock.elapsed_seconds if plan.calendar == current else recount_elapsed(clock, plan.calendar)
        return (clock.running_since if running else now), elapsed
    ran = engine.business_seconds_between(clock.running_since, now, current) if running else 0.0
    return now, clock.elapsed_seconds + ran


def outcome(clock: SlaClock, plan: Plan, *, now: datetime, current: engine.Calendar) -> Outcome:
    """One active clock under `plan`; `current` is the calendar it counts on now."""
    running = clock.state == ClockState.RUNNING and clock.running_since is not None
    old_due = old_remaining = None
    if running:
        old_due = clock.due_at or engine.add_business_time(
            clock.running_since, max(0.0, clock.target_seconds - clock.elapsed_seconds), current)
        late_before = clock.breached_at is not None or old_due <= now
    else:
        old_remaining = clock.target_seconds - clock.elapsed_seconds
        late_before = clock.breached_at is not None or old_remaining <= 0
    if plan.target_seconds is None:
        return Outcome(clock, old_due, None, old_remaining, None, None, plan.lost, late_before, False, False)

    start, elapsed = _counted(clock, plan, current, now)
    target = plan.target_seconds
    if running:
        new_due = engine.add_business_time(start, max(0.0, target - elapsed), plan.calendar)
        threshold = target * plan.warning_percent / 100
        warn_at = engine.add_business_time(start, max(0.0, threshold - elapsed), plan.calendar)
        late_after = new_due <= now
        warns = clock.warned_at is None and warn_at <= now and not late_after
        return Outcome(clock, old_due, new_due, None, None, (new_due - old_due).total_seconds(), "", late_before,
                       late_after, warns)
    new_remaining = target - elapsed
    late_after = new_remaining <= 0
    warns = clock.warned_at is None and elapsed >= target * plan.warning_percent / 100 and not late_after
    return Outcome(clock, None, None, old_remaining, new_remaining, new_remaining - old_remaining, "",
                   late_before, late_after, warns)


def _size(row: Outcome) -> tuple:
    lost = row.shift_seconds is None
    return (not lost, -abs(row.shift_seconds or 0), row.clock.ticket_type, row.clock.ticket_id, row.clock.kind)


def whatif(clocks: Iterable[SlaClock], plan_for: Callable[[SlaClock], Plan], *, now: datetime | None = None,
           limit: int = ROW_LIMIT) -> WhatIf:
    """The outcome of every clock under `plan_for(clock)`, largest shift first (lost SLAs first of all); the
    first `limit` rows carry their ticket's info (one adapter call per ticket shown)."""
    now = now or timezone.now()
    outcomes = sorted((outcome(c, plan_for(c), now=now, current=clock_calendar(c.calendar)) for c in clocks),
                      key=_size)
    shown = outcomes[:limit]
    infos: dict[tuple[str, int], TicketInfo | None] = {}
    wanted: dict[str, set[int]] = {}
    for row in shown:
        wanted.setdefault(row.clock.ticket_type, set()).add(row.clock.ticket_id)
    for ticket_type, ids in wanted.items():  # one query per ticket type when the adapter names many at once
        adapter = adapter_for(ticket_type)
        if adapter is None:
            found = {}
        elif hasattr(adapter, "infos"):
            found = adapter.infos(sorted(ids))
        else:
            found = {ticket_id: adapter.info(ticket_id) for ticket_id in ids}
        infos.update({(ticket_type, ticket_id): found.get(ticket_id) for ticket_id in ids})
    return WhatIf(
        rows=[replace(row, info=infos[(row.clock.ticket_type, row.clock.ticket_id)]) for row in shown],
        total=len(outcomes), more=len(outcomes) - len(shown), now=now,
        later=sum(r.direction == "later" for r in outcomes), earlier=sum(r.direction == "earlier" for r in outcomes),
        late=sum(r.becomes_late for r in outcomes), lost=sum(r.direction == "lost" for r in outcomes),
    )


def _active_clocks(**where):
    return SlaClock.objects.filter(state__in=ACTIVE_CLOCK_STATES, **where).select_related("calendar").order_by("id")


def policy_whatif(policy_id: int, draft: PolicyDraft, *, now: datetime | None = None,
                  limit: int = ROW_LIMIT) -> WhatIf:
    """The active clocks of a policy under its edited form."""
    return whatif(_active_clocks(policy_id=policy_id), draft.plan, now=now, limit=limit)


def calendar_whatif(calendar_id: int, calendar: engine.Calendar, *, now: datetime | None = None,
                    limit: int = ROW_LIMIT) -> WhatIf:
    """The active clocks counting on a calendar (SLA and OLA) under its edited form: same targets."""
    return whatif(_active_clocks(calendar_id=calendar_id),
                  lambda c: Plan(calendar, c.target_seconds, c.warning_percent, calendar_id=calendar_id), now=now,
                  limit=limit)
