"""The improvement register (ITIL's continual improvement loop): services that write it and selectors that read it.

An improvement names a measure of insights.measures.MEASURES over a team/service scope. Its figures are the
measure over two periods of `baseline_days` days:
- before: the days ending the day before `started_on` (the baseline);
- after: from `done_on` once it is done; while in progress, from `started_on` to today ("so far"), capped at
  `baseline_days` days.
The scope is the improvement's own (its team, or every team; its service, or every service).
`before_value`/`after_value` are stored (improvement_measure, on each save and daily by the beat task) so the
register lists them without computing a measure per row; the detail page computes them live.

Who reads: every entry improvements_visible_to gives (admins: all; managers: their teams', team-less ones and
those they own or recorded; agents: their teams' and those they own). The FIGURES of an entry (before, after,
change, verdict, target met, the weekly chart) are shown only to a viewer who may see its team's figures on
the dashboard (figures_visible: admins every entry, a team-less one only admins, as its figures are those of
every team), so the register never shows a figure the dashboard refuses the same person.

Who writes: admins any improvement (and only they a team-less one); managers those of their teams (led or
member). Every write takes the row lock, checks the version the caller saw (409 when stale) and leaves an audit
row with the old and new values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from insights.models import Improvement, ImprovementStatus, ImprovementTicket
from insights.scope import teams_visible
from insights.types import Measure, Scope
from servicedesk.errors import InvalidInput, NotAllowed, StaleVersion
from servicedesk.models import Service, Team
from servicedesk.periods import FIRST_DAY
from servicedesk.registry import registry
from servicedesk.roles import STAFF_ROLES, Role, role_of
from servicedesk.services import audit_record

log = logging.getLogger(__name__)

Status = ImprovementStatus
OPEN = (Status.PLANNED, Status.IN_PROGRESS)
EDITABLE = ("title", "why", "owner", "measure", "team", "service", "due_on", "target", "started_on",
            "baseline_days")
MAX_TICKETS = 50  # tickets one improvement may link, in all
DUE_YEARS = 10  # a due date at most this many years ahead; a start at most a year ahead
FIGURES_HIDDEN = "figures of teams you are not in are not shown"


def measures() -> dict[str, Measure]:
    from insights.measures import MEASURES

    return MEASURES


# --- permissions and selectors -----------------------------------------------------------------------------


def improvements_visible_to(user):
    """Admins: all; managers: their teams', team-less ones and their own; agents: their teams' and their own."""
    role = role_of(user)
    base = Improvement.objects.select_related("owner", "team", "service")
    if role == Role.ADMIN:
        return base
    if role not in STAFF_ROLES:
        return base.none()
    teams = [t.id for t in teams_visible(user) or []]
    mine = Q(team_id__in=teams) | Q(owner=user)
    if role == Role.MANAGER:
        mine |= Q(team__isnull=True) | Q(created_by=user)
    return base.filter(mine)


def improvement_can_write(user, team: Team | None) -> bool:
    """Whether `user` may record or change an improvement of `team` (None: team-less, admins only)."""
    role = role_of(user)
    if role == Role.ADMIN:
        return True
    if role != Role.MANAGER or team is None:
        return False
    return any(t.id == team.id for t in teams_visible(user) or [])


def figures_teams(user) -> set[int] | None:
    """The ids of the teams whose improvements' figures `user` may read; None: every improvement's (admins).
    One query; pass it to figures_visible for each row of a list."""
    role = role_of(user)
    if role == Role.ADMIN:
        return None
    if role not in STAFF_ROLES:
        return set()
    return {t.id for t in teams_visible(user) or []}


def figures_visible(user, improvement: Improvement, *, teams: set[int] | None | bool = False) -> bool:
    """Whether `user` may read the before/after figures of `improvement`: admins always; others only of an
    improvement of a team whose figures they see on the dashboard (never of a team-less one: its figures are
    every team's). `teams`: figures_teams(user), when the caller has it."""
    if teams is False:
        teams = figures_teams(user)
    if teams is None:
        return True
    return improvement.team_id is not None and improvement.team_id in teams


def improvement_writers_teams(user) -> list[Team] | None:
    """The teams `user` may choose on the form (None: all teams)."""
    role = role_of(user)
    if role == Role.ADMIN:
        return None
    return teams_visible(user) if role == Role.MANAGER else []


# --- validation ---------------------------------------------------------------------------------------------


def date_bounds(name: str, *, today: date | None = None) -> tuple[date, date]:
    """The earliest and latest date the register accepts for `name` (started_on, due_on, done_on): from
    FIRST_DAY; a start at most a year ahead, a due date DUE_YEARS ahead, a done date today."""
    today = today or timezone.localdate()
    latest = {"started_on": today + timedelta(days=366), "due_on": today + timedelta(days=366 * DUE_YEARS),
              "done_on": today}[name]
    return FIRST_DAY, latest


def _check_date(name: str, value: date, today: date | None = None) -> None:
    first, last = date_bounds(name, today=today)
    if not first <= value <= last:
        raise InvalidInput(f"{name}: give a date from {first.isoformat()} to {last.isoformat()}", field=name)


def parse_version(version) -> int | None:
    """The version a caller saw, as an int (None: not given); InvalidInput naming `version` otherwise."""
    if version is None or version == "":
        return None
    try:
        return int(str(version).strip())
    except ValueError:
        raise InvalidInput(f"version: {version!r} is not a version number; reload the page", field="version") \
            from None


def _clean(values: dict, *, actor) -> dict:
    """The fields in `values` checked and normalised; InvalidInput naming the first bad one."""
    out = dict(values)
    if "title" in out:
        out["title"] = (out["title"] or "").strip()
        if not out["title"]:
            raise InvalidInput("title: say in a few words what is being improved", field="title")
        if len(out["title"]) > 200:
            raise InvalidInput("title: at most 200 characters", field="title")
    if "why" in out:
        out["why"] = (out["why"] or "").strip()
        if not out["why"]:
            raise InvalidInput("why: say what problem was seen and what change is expected", field="why")
    if "measure" in out and out["measure"] not in measures():
        raise InvalidInput(f"measure: {out['measure']!r} is not a measure (one of: {', '.join(measures())})",
                           field="measure")
    if "owner" in out:
        owner = out["owner"]
        if owner is None or not getattr(owner, "is_active", False) or role_of(owner) not in STAFF_ROLES:
            raise InvalidInput("owner: choose an active agent, manager or admin", field="owner")
    if "team" in out and out["team"] is not None and not isinstance(out["team"], Team):
        raise InvalidInput("team: not a team", field="team")
    if "service" in out and out["service"] is not None and not isinstance(out["service"], Service):
        raise InvalidInput("service: not a service", field="service")
    if "target" in out and out["target"] is not None:
        try:
            out["target"] = float(out["target"])
        except (TypeError, ValueError):
            raise InvalidInput(f"target: {out['target']!r} is not a number", field="target") from None
    if "baseline_days" in out:
        try:
            days = int(out["baseline_days"])
        except (TypeError, ValueError):
            days = 0
        if not 1 <= days <= 366:
            raise InvalidInput("baseline_days: give a number of days from 1 to 366", field="baseline_days")
        out["baseline_days"] = days
    for name in ("due_on", "started_on", "done_on"):
        if name in out and out[name] is not None and not isinstance(out[name], date):
            raise InvalidInput(f"{name}: not a date", field=name)
        if name in out and out[name] is not None:
            _check_date(name, out[name])
    if "started_on" in out and out["started_on"] is None:
        raise InvalidInput("started_on: give the day the change started", field="started_on")
    return out


def _check_dates(improvement: Improvement) -> None:
    if improvement.due_on and improvement.due_on < improvement.started_on:
        raise InvalidInput(f"due_on: must not be before the start ({improvement.started_on.isoformat()})",
                           field="due_on")
    if improvement.done_on and improvement.done_on < improvement.started_on:
        raise InvalidInput(f"done_on: must not be before the start ({improvement.started_on.isoformat()})",
                           field="done_on")


def _check_write(actor, team) -> None:
    if not improvement_can_write(actor, team):
        if role_of(actor) == Role.MANAGER:
            raise InvalidInput("team: choose one of your teams" + (
                f" ({team.name} is not one of them)" if team is not None else
                " (only admins record improvements of all teams)"), field="team")
        raise NotAllowed("Only managers and admins record improvements.")


def _plain(value):
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Team | Service):
        return value.name
    if isinstance(value, get_user_model()):
        return value.get_username()
    return value


# --- writes -------------------------------------------------------------------------------------------------


@transaction.atomic
def improvement_create(*, actor, title, why, owner, measure, team=None, service=None, due_on=None, target=None,
                       started_on=None, baseline_days=30, tickets: Iterable[str] = (), today=None) -> Improvement:
    values = _clean({"title": title, "why": why, "owner": owner, "measure": measure, "team": team,
                     "service": service, "due_on": due_on, "target": target,
                     "started_on": started_on or timezone.localdate(), "baseline_days": baseline_days},
                    actor=actor)
    _check_write(actor, values["team"])
    now = timezone.now()
    improvement = Improvement(**values, created_by=actor, created_at=now, updated_at=now)
    _check_dates(improvement)
    improvement.save()
    audit_record(actor=actor, action="improvement.created", obj=improvement,
                 changes={k: _plain(v) for k, v in values.items()})
    numbers = _numbers(tickets)
    if numbers:
        _link(improvement, actor, numbers)
    improvement_measure(improvement_id=improvement.id, today=today)
    improvement.refresh_from_db()
    return improvement


def _lock(improvement_id) -> Improvement:
    try:
        return Improvement.objects.select_for_update(of=("self",)).select_related("team").get(id=improvement_id)
    except Improvement.DoesNotExist:
        raise InvalidInput(f"improvement: no improvement {improvement_id}", field="improvement") from None


def _check_version(improvement: Improvement, version) -> None:
    version = parse_version(version)
    if version is None or version == improvement.version:
        return
    when = timezone.localtime(improvement.updated_at).strftime("%Y-%m-%d %H:%M:%S")
    raise StaleVersion(f"“{improvement.title}” was changed at {when} (version {improvement.version}, you sent "
                       f"{version}); reload it and apply your change again", field="version")


def _save(improvement: Improvement, fields: list[str]) -> None:
    improvement.version = F("version") + 1
    improvement.updated_at = timezone.now()
    improvement.save(update_fields=[*fields, "version", "updated_at"])
    improvement.refresh_from_db(fields=["version", "updated_at"])


@transaction.atomic
def improvement_update(*, improvement_id, actor, version, today=None, **fields) -> Improvement:
    """Change some of the EDITABLE fields; saving what is already there changes nothing."""
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"{unknown[0]}: not editable here", field=unknown[0])
    improvement = _lock(improvement_id)
    _check_write(actor, improvement.team)
    _check_version(improvement, version)
    values = _clean(fields, actor=actor)
    if "team" in values:
        _check_write(actor, values["team"])
    diff, changed = {}, []
    for name, value in values.items():
        old = getattr(improvement, name)
        if old != value:
            diff[name] = (_plain(old), _plain(value))
            setattr(improvement, name, value)
            changed.append(name)
    if not changed:
        return improvement
    _check_dates(improvement)
    _save(improvement, [f"{n}_id" if n in ("owner", "team", "service") else n for n in changed])
    audit_record(actor=actor, action="improvement.updated", obj=improvement, changes=diff)
    if {"measure", "team", "service", "started_on", "baseline_days"} & set(changed):
        improvement_measure(improvement_id=improvement.id, today=today)
        improvement.refresh_from_db()
    return improvement


@transaction.atomic
def improvement_set_status(*, improvement_id, actor, status, version=None, done_on=None,
                           today=None) -> Improvement:
    """Move to `status`; "done" sets done_on (today unless given), any other status clears it. Setting the
    status it already has changes nothing."""
    if status not in Status.values:
        raise InvalidInput(f"status: {status!r} is not a status (one of: {', '.join(Status.values)})",
                           field="status")
    improvement = _lock(improvement_id)
    _check_write(actor, improvement.team)
    _check_version(improvement, version)
    today = today or timezone.localdate()
    new_done = (done_on or today) if status == Status.DONE else None
    if new_done is not None and not isinstance(new_done, date):
        raise InvalidInput("done_on: not a date", field="done_on")
    if improvement.status == status and improvement.done_on == new_done:
        return improvement
    if status == Status.DONE and new_done > today:
        raise InvalidInput("done_on: cannot be in the future", field="done_on")
    if new_done is not None:
        _check_date("done_on", new_done, today)
    diff = {}
    if improvement.status != status:
        diff["status"] = (improvement.status, status)
    if improvement.done_on != new_done:
        diff["done_on"] = (_plain(improvement.done_on), _plain(new_done))
    improvement.status, improvement.done_on = status, new_done
    _check_dates(improvement)
    _save(improvement, ["status", "done_on"])
    audit_record(actor=actor, action="improvement.status", obj=improvement, changes=diff)
    improvement_measure(improvement_id=improvement.id, today=today)
    improvement.refresh_from_db()
    return improvement


def _numbers(tickets) -> list[str]:
    if isinstance(tickets, str):
        tickets = tickets.replace(",", " ").split()
    seen: list[str] = []
    for raw in tickets or ():
        number = (raw or "").strip().upper()
        if number and number not in seen:
            seen.append(number)
    if len(seen) > MAX_TICKETS:
        raise InvalidInput(f"tickets: an improvement links at most {MAX_TICKETS} tickets", field="tickets")
    return seen


def ticket_find(user, number: str):
    """(kind, brief) of the ticket `number` names, of any registered type, if `user` may open it; else None."""
    for kind in registry.kinds.values():
        ticket = kind.find(user, number)
        if ticket is not None:
            return kind.kind, kind.brief(ticket)
    return None


def _link(improvement: Improvement, actor, numbers: list[str]) -> list[str]:
    """Link `numbers` (one registry lookup each); an improvement holds at most MAX_TICKETS links in all, so its
    page looks up at most that many."""
    have = set(improvement.tickets.values_list("number", flat=True))
    new = [n for n in numbers if n not in have]
    if len(have) + len(new) > MAX_TICKETS:
        raise InvalidInput(f"tickets: an improvement links at most {MAX_TICKETS} tickets; this one has "
                           f"{len(have)}, and {len(new)} more would make {len(have) + len(new)}", field="tickets")
    found = []
    for number in numbers:
        hit = ticket_find(actor, number)
        if hit is None:
            raise InvalidInput(f"tickets: no ticket {number} that you may open", field="tickets")
        if number not in have:
            found.append((hit[0], hit[1]))
    ImprovementTicket.objects.bulk_create([
        ImprovementTicket(improvement=improvement, kind=kind, number=brief.number, title=brief.title[:200])
        for kind, brief in found])
    linked = [brief.number for _, brief in found]
    if linked:
        audit_record(actor=actor, action="improvement.linked", obj=improvement, changes={"tickets": linked})
    return linked


@transaction.atomic
def improvement_link_tickets(*, improvement_id, actor, tickets) -> list[str]:
    """Link the tickets `tickets` names (numbers of any type, a list or a space/comma separated string);
    returns the numbers newly linked. A number that is unknown or that the actor may not open links nothing."""
    improvement = _lock(improvement_id)
    _check_write(actor, improvement.team)
    numbers = _numbers(tickets)
    if not numbers:
        raise InvalidInput("tickets: give one or more ticket numbers, e.g. INC0001001", field="tickets")
    return _link(improvement, actor, numbers)


@transaction.atomic
def improvement_unlink_ticket(*, improvement_id, actor, number) -> bool:
    improvement = _lock(improvement_id)
    _check_write(actor, improvement.team)
    deleted, _ = ImprovementTicket.objects.filter(improvement=improvement, number=(number or "").upper()).delete()
    if deleted:
        audit_record(actor=actor, action="improvement.unlinked", obj=improvement, changes={"tickets": [number]})
    return bool(deleted)


# --- the measure before and after ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BeforeAfter:
    """The measure over the baseline and over the period after; unpacks as the six values
    (before_scope, before_value, after_scope, after_value, change, verdict)."""

    before_scope: Scope
    before_value: float | None
    after_scope: Scope | None  # None: the after period has not begun
    after_value: float | None
    change: float | None  # after - before, in the measure's unit
    verdict: str  # "better" | "worse" | "same" | "higher" | "lower" (a volume) | "not yet measurable"
    after_complete: bool = False  # the after period has run its full length
    target_met: bool | None = None  # None: no target, or nothing measured after yet

    def __iter__(self):
        return iter((self.before_scope, self.before_value, self.after_scope, self.after_value, self.change,
                     self.verdict))


def _scope(improvement: Improvement, date_from: date, date_to: date) -> Scope:
    team, service = improvement.team, improvement.service
    return Scope(date_from, date_to, (team.id,) if team else None, team.id if team else None,
                 service.id if service else None, team.name if team else "All teams",
                 service.name if service else "All services")


def improvement_periods(improvement: Improvement, *, today=None) -> tuple[Scope, Scope | None, bool]:
    """(before, after or None, after complete)."""
    today = today or timezone.localdate()
    days = improvement.baseline_days
    before = _scope(improvement, improvement.started_on - timedelta(days=days), improvement.started_on - timedelta(1))
    start = improvement.done_on if improvement.status == Status.DONE and improvement.done_on else improvement.started_on
    end = start + timedelta(days=days - 1)
    if start > today:
        return before, None, False
    return before, _scope(improvement, start, min(end, today)), end <= today


def verdict_of(measure: Measure, before: float | None, after: float | None, *, complete: bool = True) -> str:
    if before is None or after is None or (measure.unit == "count" and not complete):
        return "not yet measurable"  # a count over a shorter period compares with nothing
    if abs(after - before) < 1e-9:
        return "same"
    up = after > before
    if not measure.better:
        return "higher" if up else "lower"
    return "better" if up == (measure.better == "higher") else "worse"


def target_met(measure: Measure, target: float | None, after: float | None) -> bool | None:
    if target is None or after is None:
        return None
    return after <= target if measure.better == "lower" else after >= target


def improvement_before_after(improvement: Improvement, *, today=None) -> BeforeAfter:
    """The measure before and after, computed now (two measure_values calls)."""
    from insights.measures import measure_values

    measure = measures()[improvement.measure]
    before_scope, after_scope, complete = improvement_periods(improvement, today=today)
    before = measure_values(before_scope).get(improvement.measure)
    after = measure_values(after_scope).get(improvement.measure) if after_scope else None
    return _before_after(improvement, measure, before_scope, before, after_scope, after, complete)


def _before_after(improvement, measure, before_scope, before, after_scope, after, complete) -> BeforeAfter:
    change = round(after - before, 4) if before is not None and after is not None else None
    return BeforeAfter(before_scope, before, after_scope, after, change,
                       verdict_of(measure, before, after, complete=complete), complete,
                       target_met(measure, improvement.target, after))


def improvement_stored(improvement: Improvement, *, today=None) -> BeforeAfter | None:
    """The before/after from the stored figures (no query); None when the measure is unknown."""
    measure = measures().get(improvement.measure)
    if measure is None:
        return None
    before_scope, after_scope, complete = improvement_periods(improvement, today=today)
    return _before_after(improvement, measure, before_scope, improvement.before_value, after_scope,
                         improvement.after_value, complete)


def improvement_measure(*, improvement_id, today=None) -> Improvement:
    """Store the measure's current before and after values on the improvement (no version bump: figures, not
    an edit)."""
    improvement = Improvement.objects.select_related("team", "service").get(id=improvement_id)
    if improvement.measure not in measures():
        return improvement
    figures = improvement_before_after(improvement, today=today)
    Improvement.objects.filter(id=improvement.id).update(before_value=figures.before_value,
                                                        after_value=figures.after_value,
                                                        measured_at=timezone.now())
    return improvement


def improvements_measure_all(*, today=None) -> int:
    """The daily refresh: every improvement whose after period is still running (or has not begun, or ended
    since the last measurement). Returns how many were measured. Each is measured in its own savepoint: one
    that fails is logged with its id and keeps its old figures (and measured_at, which says how old they are);
    the others are measured all the same."""
    today = today or timezone.localdate()
    ids = list(Improvement.objects.exclude(status=Status.DROPPED)
               .filter(Q(done_on__isnull=True) | Q(done_on__gte=today - timedelta(days=367)))
               .order_by("id").values_list("id", flat=True))
    measured = 0
    for improvement_id in ids:
        try:
            with transaction.atomic():
                improvement_measure(improvement_id=improvement_id, today=today)
        except Exception:
            log.exception("improvement %s could not be measured; its stored figures stay as they were",
                          improvement_id)
        else:
            measured += 1
    return measured


def is_overdue(improvement: Improvement, *, today=None) -> bool:
    today = today or timezone.localdate()
    return improvement.status in OPEN and improvement.due_on is not None and improvement.due_on < today
