"""Per-ticket clocks: first response, resolution and OLA, kept in step with their ticket.

A ticket app calls `clocks_sync(facts)` from each of its service functions, inside the transaction that
changed the ticket (and after locking the ticket's row). `clocks_sync` compares the stored clocks with the
facts and moves each one: start, pause, resume, re-target (priority or policy changed: the elapsed business
time is kept), stop (met or breached), cancel, restart (a reopened ticket's resolution clock), and for OLAs
stop the old team's clock and start the new team's. Every move recomputes the absolute `due_at` and
`warn_at` and writes a segment with its reason, so the deadline can be explained. It returns a summary the
ticket stores for its queues (the earliest due instant of its running SLA clocks).

What counts, also in docs/architecture.md (SLA clocks per ticket):
- The first response clock stops at the first public reply by an agent, or when the ticket is resolved
  (the resolution reaches the requester). Assigning a ticket does not stop it: nobody told the requester.
- The resolution clock stops when the ticket is resolved and starts again, keeping its elapsed time, when
  it is reopened; the resolved stretch shows as a pause.
- A clock pauses while the ticket's status is one of the policy's pause statuses ("on_hold" or
  "on_hold:awaiting_caller"). OLA clocks pause on the same statuses.
- Warnings and breaches are marked by the sweep (sla.sweep), once each, and never undone: an escalation
  that went out stays. A clock stopped after its target is breached even if the sweep had not got there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from sla import clock as engine
from sla.models import (
    ACTIVE_CLOCK_STATES,
    BusinessCalendar,
    ClockKind,
    ClockState,
    OlaTarget,
    SlaClock,
    SlaPolicy,
)
from sla.registry import TicketFacts
from sla.selectors import policy_for

SLA_KINDS = (ClockKind.FIRST_RESPONSE, ClockKind.RESOLUTION)
DEFAULT_PAUSE = ["on_hold:awaiting_caller"]


@dataclass(frozen=True)
class SlaSummary:
    """What a ticket keeps of its clocks for queues: the earliest due instant of its running SLA clocks (None
    when none runs), and the state to colour it by."""

    due_at: datetime | None
    state: str | None  # "running", "paused", "breached" (a running or paused clock is late), or None


# --- calendars --------------------------------------------------------------------------------------------

_calendars: dict[int, tuple[tuple, engine.Calendar]] = {}


def clock_calendar(calendar: BusinessCalendar) -> engine.Calendar:
    """The pure calendar of a BusinessCalendar, built once per revision of it (sla.signals raises the revision
    on every change of the calendar, its intervals or holidays). Costs no query when the copy is fresh."""
    key = (calendar.revision, _aware(calendar.created_at))
    cached = _calendars.get(calendar.id)
    if cached is not None and cached[0] == key:
        return cached[1]
    fresh = BusinessCalendar.objects.prefetch_related("intervals", "holidays").get(id=calendar.id)
    built = fresh.as_clock_calendar()
    _calendars[calendar.id] = ((fresh.revision, _aware(fresh.created_at)), built)
    return built


def _aware(at: datetime | None) -> datetime | None:
    # A hand-written query on SQLite returns naive UTC datetimes; the ORM returns aware ones.
    return timezone.make_aware(at, UTC) if at is not None and timezone.is_naive(at) else at


# --- one clock --------------------------------------------------------------------------------------------


def _iso(at: datetime) -> str:
    return at.isoformat()


def _open(clock: SlaClock, state: str, at: datetime, reason: str) -> None:
    # Each segment names the calendar it is counted on, so re-counting after a calendar edit touches only
    # the stretches that ran on that calendar (recount_elapsed).
    clock.segments.append({"state": state, "from": _iso(at), "to": None, "seconds": None, "reason": reason,
                           "calendar": clock.calendar_id})


def _close(clock: SlaClock, at: datetime, seconds: float, ended_by: str = "") -> None:
    if not clock.segments or clock.segments[-1]["to"] is not None:
        return
    last = clock.segments[-1]
    last["to"], last["seconds"] = _iso(at), round(seconds, 3)
    if ended_by:
        last["ended_by"] = ended_by


def _segment_start(clock: SlaClock, default: datetime) -> datetime:
    if clock.segments and clock.segments[-1]["to"] is None:
        return parse_datetime(clock.segments[-1]["from"])
    return default


def elapsed_seconds(clock: SlaClock, cal: engine.Calendar, now: datetime) -> float:
    """Business seconds the clock has run until `now` (until its stop when stopped)."""
    if clock.state == ClockState.RUNNING and clock.running_since is not None:
        return clock.elapsed_seconds + engine.business_seconds_between(clock.running_since, now, cal)
    return clock.elapsed_seconds


def remaining_seconds(clock: SlaClock, cal: engine.Calendar, now: datetime) -> float:
    """Business seconds left before the target (negative when late)."""
    return clock.target_seconds - elapsed_seconds(clock, cal, now)


def _schedule(clock: SlaClock, cal: engine.Calendar) -> None:
    """`due_at` and `warn_at` from the running segment's start and what elapsed before it."""
    if clock.state != ClockState.RUNNING:
        clock.due_at = clock.warn_at = None
        return
    clock.due_at = engine.add_business_time(
        clock.running_since, max(0.0, clock.target_seconds - clock.elapsed_seconds), cal)
    if clock.warned_at is None:
        threshold = clock.target_seconds * clock.warning_percent / 100
        clock.warn_at = engine.add_business_time(clock.running_since, max(0.0, threshold - clock.elapsed_seconds),
                                                 cal)
    else:
        clock.warn_at = None


def _bank(clock: SlaClock, cal: engine.Calendar, now: datetime, ended_by: str = "") -> None:
    """Close the current segment at `now`, adding a running one's business time to `elapsed_seconds`."""
    if clock.state == ClockState.RUNNING:
        ran = engine.business_seconds_between(clock.running_since, now, cal)
        clock.elapsed_seconds += ran
        _close(clock, now, ran, ended_by)
    elif clock.state == ClockState.PAUSED:
        _close(clock, now, engine.business_seconds_between(_segment_start(clock, now), now, cal), ended_by)
    clock.running_since = None


def _pause(clock: SlaClock, cal, now, reason: str) -> None:
    _bank(clock, cal, now)
    clock.state = ClockState.PAUSED
    _open(clock, "paused", now, reason)
    _schedule(clock, cal)


def _resume(clock: SlaClock, cal, now, reason: str) -> None:
    _bank(clock, cal, now)
    clock.state, clock.running_since = ClockState.RUNNING, now
    _open(clock, "running", now, reason)
    _schedule(clock, cal)


def _stop(clock: SlaClock, cal, now, reason: str, *, cancel: bool = False) -> None:
    _bank(clock, cal, now, ended_by=reason)
    clock.stopped_at = now
    if cancel:
        clock.state = ClockState.CANCELLED
    else:
        late = clock.breached_at is not None or clock.elapsed_seconds > clock.target_seconds
        clock.state = ClockState.BREACHED if late else ClockState.MET
        if late and clock.breached_at is None:
            clock.breached_at = now  # stopped late before the sweep saw it: breached, with nothing to escalate
    _schedule(clock, cal)


def _restart(clock: SlaClock, cal, now, reason: str, paused_by: str, why_stopped: str = "Resolved") -> None:
    """A stopped clock runs on from its elapsed time: a reopened ticket's resolution clock, or a clock that lost
    its policy and is covered again. The stopped stretch shows as a pause (`why_stopped`)."""
    stopped = clock.stopped_at or now
    clock.segments.append({"state": "paused", "from": _iso(stopped), "to": _iso(now),
                           "seconds": round(engine.business_seconds_between(stopped, now, cal), 3),
                           "reason": why_stopped, "calendar": clock.calendar_id})
    clock.stopped_at = None
    if paused_by:
        clock.state = ClockState.PAUSED
        _open(clock, "paused", now, paused_by)
    else:
        clock.state, clock.running_since = ClockState.RUNNING, now
        _open(clock, "running", now, reason)
    _schedule(clock, cal)


def _retarget(clock: SlaClock, old_cal, new_cal, now, *, target: int, priority: int, reason: str,
              policy: SlaPolicy | None = None, calendar: BusinessCalendar | None = None) -> None:
    """A new target (priority, policy or calendar changed): the business time elapsed so far is kept, and
    from now on counts on the new calendar."""
    state = clock.state
    _bank(clock, old_cal, now)
    clock.target_seconds, clock.priority = target, priority
    if policy is not None:
        clock.policy, clock.policy_name, calendar = policy, policy.name, policy.calendar
        clock.warning_percent, clock.pause_statuses = policy.warning_percent, list(policy.pause_statuses)
    if calendar is not None:
        clock.calendar = calendar
    if state == ClockState.RUNNING:
        clock.running_since = now
        _open(clock, "running", now, reason)
    else:
        _open(clock, "paused", now, f"{reason}; still paused")
    _schedule(clock, new_cal)


def _new_clock(facts: TicketFacts, kind: str, *, calendar, target: int, now, reason: str, paused_by: str,
               policy: SlaPolicy | None = None, warning_percent: int = 75, pause_statuses=None) -> SlaClock:
    clock = SlaClock(
        ticket_type=facts.ticket_type, ticket_id=facts.ticket_id, kind=kind, policy=policy,
        policy_name=policy.name if policy else "", team_id=facts.team_id, calendar=calendar,
        priority=facts.priority, target_seconds=target,
        warning_percent=policy.warning_percent if policy else warning_percent,
        pause_statuses=list(policy.pause_statuses) if policy else list(pause_statuses or DEFAULT_PAUSE),
        started_at=now, segments=[],
    )
    if paused_by:
        clock.state = ClockState.PAUSED
        _open(clock, "paused", now, paused_by)
    else:
        clock.state, clock.running_since = ClockState.RUNNING, now
        _open(clock, "running", now, reason)
    _schedule(clock, clock_calendar(calendar))
    return clock


def pauses_on(statuses, status: str) -> bool:
    """Whether a ticket in `status` ("on_hold:awaiting_caller") is paused by these pause statuses."""
    return status in statuses or status.split(":", 1)[0] in statuses


def _duration(seconds: int) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


# --- a ticket's clocks ------------------------------------------------------------------------------------


def _policy(facts: TicketFacts) -> SlaPolicy | None:
    policy = policy_for(facts.ticket_type, facts.priority, facts.service_id, facts.organisation_id,
                        facts.policy_id)
    if policy is None:
        return None
    policy.target_seconds = {ClockKind.FIRST_RESPONSE: policy.first_response_minutes * 60,
                             ClockKind.RESOLUTION: policy.resolution_minutes * 60}
    return policy


def recount_elapsed(clock: SlaClock, cal: engine.Calendar, calendar_id: int | None = None) -> float:
    """The business seconds of the clock's closed running segments, those that ran on calendar `calendar_id`
    (the clock's own by default) counted again on `cal`, its edited version; stretches that ran on another
    calendar (before a policy moved the clock) keep what they counted. Equals `elapsed_seconds` while the
    calendar is unchanged."""
    calendar_id = clock.calendar_id if calendar_id is None else calendar_id
    total = 0.0
    for segment in clock.segments:
        if segment["state"] != "running" or segment["to"] is None:
            continue
        if segment.get("calendar", calendar_id) == calendar_id:
            total += engine.business_seconds_between(parse_datetime(segment["from"]), parse_datetime(segment["to"]),
                                                     cal)
        else:
            total += segment["seconds"] or 0.0
    return total


def clocks_sync(facts: TicketFacts, *, now: datetime | None = None, reason: str = "",
                recount: bool = False) -> SlaSummary:
    """Bring the ticket's clocks in step with `facts` (see the module's docstring); returns their summary.

    Call it inside the transaction that changed the ticket. The clocks' rows are locked, so a sweep marking
    one of them at the same moment finishes first and its mark is kept. With `recount` (a calendar or policy
    was saved: sla.retime), the active clocks' elapsed time is counted again on their calendar as it is now,
    as the what-if preview showed it."""
    now = now or timezone.now()
    reason = reason or "Ticket changed"
    clocks = list(
        SlaClock.objects.select_for_update(of=("self",)).select_related("calendar")
        .filter(ticket_type=facts.ticket_type, ticket_id=facts.ticket_id)
        .exclude(kind=ClockKind.OLA, state__in=[ClockState.MET, ClockState.BREACHED, ClockState.CANCELLED])
        .order_by("id")
    )
    latest = {clock.kind: clock for clock in clocks}  # the last clock of each kind
    closed = facts.resolved or facts.cancelled
    changed: list[SlaClock] = []
    created: list[SlaClock] = []

    sla_clocks = [latest[k] for k in SLA_KINDS if k in latest]
    policy = _policy(facts) if not closed else None

    for kind in SLA_KINDS:
        clock = latest.get(kind)
        done = facts.responded or facts.resolved if kind == ClockKind.FIRST_RESPONSE else facts.resolved
        if clock is None:
            if policy is not None and not done and not facts.cancelled and not sla_clocks:
                paused_by = facts.status_label if pauses_on(policy.pause_statuses, facts.status) else ""
                created.append(_new_clock(facts, kind, calendar=policy.calendar, policy=policy, now=now,
                                          target=policy.target_seconds[kind], reason=reason, paused_by=paused_by))
            continue
        cal = clock_calendar(clock.calendar)
        before = (clock.state, clock.due_at, clock.warn_at, clock.target_seconds, clock.policy_id,
                  len(clock.segments), clock.elapsed_seconds, clock.team_id, clock.warning_percent,
                  list(clock.pause_statuses))
        if clock.active:
            clock.team_id = facts.team_id
            if recount:
                clock.elapsed_seconds = recount_elapsed(clock, cal)
            if facts.cancelled:
                _stop(clock, cal, now, reason, cancel=True)
            elif done:
                _stop(clock, cal, now, reason)
            elif policy is None:
                _stop(clock, cal, now, f"No SLA policy covers P{facts.priority}", cancel=True)
            else:
                _follow(clock, cal, policy, facts, now, reason)
        elif kind == ClockKind.RESOLUTION and clock.state in (ClockState.MET, ClockState.BREACHED) and not closed:
            paused_by = facts.status_label if pauses_on(clock.pause_statuses, facts.status) else ""
            _restart(clock, cal, now, reason, paused_by)
            if policy is not None:
                _follow(clock, cal, policy, facts, now, reason)
        elif clock.state == ClockState.CANCELLED and policy is not None and not done and not facts.cancelled:
            # It stopped because no policy covered the ticket (a cancelled ticket stays cancelled): covered again,
            # it runs on with the time it had.
            paused_by = facts.status_label if pauses_on(policy.pause_statuses, facts.status) else ""
            _restart(clock, cal, now, reason, paused_by, why_stopped="No SLA policy covered it")
            _follow(clock, cal, policy, facts, now, reason)
        if (clock.state, clock.due_at, clock.warn_at, clock.target_seconds, clock.policy_id,
                len(clock.segments), clock.elapsed_seconds, clock.team_id, clock.warning_percent,
                list(clock.pause_statuses)) != before:
            changed.append(clock)

    _sync_ola(facts, latest.get(ClockKind.OLA), now, reason, pause_statuses=(
        policy.pause_statuses if policy is not None else DEFAULT_PAUSE), changed=changed, created=created,
        recount=recount)

    for clock in {id(c): c for c in changed}.values():
        clock.save()
    if created:
        SlaClock.objects.bulk_create(created)
    return summarise([c for c in (*sla_clocks, *created) if c.kind in SLA_KINDS])


def _follow(clock: SlaClock, cal, policy: SlaPolicy, facts: TicketFacts, now, reason: str) -> None:
    """An active SLA clock follows the ticket: re-target when priority or policy changed, pause or resume."""
    target = policy.target_seconds[clock.kind]
    if policy.id != clock.policy_id or target != clock.target_seconds or facts.priority != clock.priority \
            or policy.calendar_id != clock.calendar_id:
        why = f"P{clock.priority} → P{facts.priority}" if facts.priority != clock.priority else \
            f"Policy {policy.name}" if policy.id != clock.policy_id else \
            f"Calendar {policy.calendar.name}" if policy.calendar_id != clock.calendar_id else f"Policy {policy.name}"
        _retarget(clock, cal, clock_calendar(policy.calendar), now, target=target, priority=facts.priority,
                  policy=policy, reason=f"{why}: target {_duration(clock.target_seconds)} → {_duration(target)}")
        cal = clock_calendar(clock.calendar)
    # Settings that need no re-target: a saved warning threshold or pause statuses apply from now.
    clock.warning_percent, clock.pause_statuses = policy.warning_percent, list(policy.pause_statuses)
    paused = pauses_on(clock.pause_statuses, facts.status)
    if paused and clock.state == ClockState.RUNNING:
        _pause(clock, cal, now, facts.status_label)
    elif not paused and clock.state == ClockState.PAUSED:
        _resume(clock, cal, now, reason)
    else:
        _schedule(clock, cal)  # the calendar may have changed since the last move


def _sync_ola(facts: TicketFacts, clock: SlaClock | None, now, reason: str, *, pause_statuses, changed, created,
              recount: bool = False):
    closed = facts.resolved or facts.cancelled
    if clock is not None:
        cal = clock_calendar(clock.calendar)
        if recount:
            clock.elapsed_seconds = recount_elapsed(clock, cal)
            _schedule(clock, cal)
            changed.append(clock)
        if closed or clock.team_id != facts.team_id:
            _stop(clock, cal, now, reason, cancel=facts.cancelled)
            changed.append(clock)
            clock = None
    if closed or facts.team_id is None:
        return
    if clock is not None and clock.priority == facts.priority and not recount:
        before = clock.state
        paused = pauses_on(clock.pause_statuses, facts.status)
        if paused and clock.state == ClockState.RUNNING:
            _pause(clock, cal, now, facts.status_label)
        elif not paused and clock.state == ClockState.PAUSED:
            _resume(clock, cal, now, reason)
        if clock.state != before:
            changed.append(clock)
        return
    target = OlaTarget.objects.filter(team_id=facts.team_id, priority=facts.priority).select_related(
        "calendar").first()
    if clock is not None:  # the priority changed, or an OLA target was saved (recount)
        if target is None:
            _stop(clock, cal, now, f"No OLA target for P{facts.priority}", cancel=True)
        elif (target.minutes * 60, target.calendar_id, facts.priority) != (
                clock.target_seconds, clock.calendar_id, clock.priority):
            why = f"P{clock.priority} → P{facts.priority}" if clock.priority != facts.priority else "OLA target"
            _retarget(clock, cal, clock_calendar(target.calendar), now, target=target.minutes * 60,
                      priority=facts.priority, calendar=target.calendar,
                      reason=f"{why}: target {_duration(clock.target_seconds)} → {_duration(target.minutes * 60)}")
        else:  # unchanged target: follow the status
            paused = pauses_on(clock.pause_statuses, facts.status)
            if paused and clock.state == ClockState.RUNNING:
                _pause(clock, cal, now, facts.status_label)
            elif not paused and clock.state == ClockState.PAUSED:
                _resume(clock, cal, now, reason)
        changed.append(clock)
        return
    if target is not None:
        paused_by = facts.status_label if pauses_on(pause_statuses, facts.status) else ""
        created.append(_new_clock(facts, ClockKind.OLA, calendar=target.calendar, target=target.minutes * 60,
                                  now=now, reason=reason, paused_by=paused_by, pause_statuses=pause_statuses))


def summarise(clocks) -> SlaSummary:
    running = [c for c in clocks if c.state == ClockState.RUNNING and c.due_at is not None]
    active = [c for c in clocks if c.state in ACTIVE_CLOCK_STATES]
    due = min((c.due_at for c in running), default=None)
    if any(c.breached_at is not None for c in active):
        state = "breached"
    elif running:
        state = "running"
    elif active:
        state = "paused"
    else:
        state = None
    return SlaSummary(due_at=due, state=state)


def clocks_of(ticket_type: str, ticket_ids) -> dict[int, list[SlaClock]]:
    """Every clock of these tickets, in one query: ticket id -> clocks (first response, resolution, then OLAs
    by start). For API fields and queue columns."""
    by_ticket: dict[int, list[SlaClock]] = {}
    order = {ClockKind.FIRST_RESPONSE: 0, ClockKind.RESOLUTION: 1, ClockKind.OLA: 2}
    rows = SlaClock.objects.filter(ticket_type=ticket_type, ticket_id__in=list(ticket_ids)).select_related(
        "calendar", "team")
    for clock in sorted(rows, key=lambda c: (order[c.kind], c.started_at, c.id)):
        by_ticket.setdefault(clock.ticket_id, []).append(clock)
    return by_ticket



def clocks_delete(ticket_type: str, ticket_ids) -> int:
    """Remove the clocks of tickets that are erased."""
    return SlaClock.objects.filter(ticket_type=ticket_type, ticket_id__in=list(ticket_ids)).delete()[0]
