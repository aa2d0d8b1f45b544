"""Who sees which figures, and for what period: the dashboard's filters turned into a Scope.

Admins see every team (and tickets with no team); managers the teams they lead or belong to; agents the teams
they belong to. Requesters see no insights. The scope's `team_ids` is then a filter of every query that reads
the rollup or the tickets, so a figure never counts a ticket of a team the viewer may not see.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import Q
from django.utils import timezone

from insights.types import Scope
from servicedesk.models import Service, Team
from servicedesk.periods import FIRST_DAY, check_period, parse_day
from servicedesk.replica import primary_reads
from servicedesk.roles import STAFF_ROLES, Role, role_of

MAX_DAYS = 366


class ScopeError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def insights_allowed(user) -> bool:
    return role_of(user) in STAFF_ROLES


def teams_visible(user) -> list[Team] | None:
    """The teams whose figures `user` may see; None: all of them (admins)."""
    role = role_of(user)
    if role == Role.ADMIN:
        return None
    if role not in STAFF_ROLES:
        return []
    mine = Q(memberships__user=user)
    if role == Role.MANAGER:
        mine |= Q(lead=user)
    return list(Team.objects.filter(mine).distinct().order_by("name"))


def _id(value, name: str, errors: dict) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
        if number <= 0:
            raise ValueError
        return number
    except (TypeError, ValueError):
        errors[name] = f"{value!r} is not the id of a {name}."
        return None


def _build(user, date_from, date_to, team_id, service_id, errors: dict) -> Scope:
    check_period(date_from, date_to, errors, max_days=MAX_DAYS)
    visible = teams_visible(user)
    team_label, service_label = "All teams" if visible is None else "My teams", "All services"
    team_ids = None if visible is None else tuple(t.id for t in visible)
    if team_id is not None:
        team = next((t for t in visible if t.id == team_id), None) if visible is not None \
            else Team.objects.filter(id=team_id).first()
        if team is None:
            errors["team"] = f"No team {team_id} that you may see" + (
                f": yours are {', '.join(t.name for t in visible)}." if visible else ".")
        else:
            team_ids, team_label = (team.id,), team.name
    if service_id is not None:
        service = Service.objects.filter(id=service_id).only("id", "name").first()
        if service is None:
            errors["service"] = f"No service {service_id}."
        else:
            service_label = service.name
    if errors:
        raise ScopeError(errors)
    return Scope(date_from, date_to, team_ids, team_id, service_id, team_label, service_label)


def scope_for(user, query, *, today: date | None = None, default_days: int = 30) -> Scope:
    """The scope a query string asks for (`from`, `to`, `team`, `service`); a missing period is the last
    `default_days` days up to today. Dates run from FIRST_DAY to a year after today. Raises ScopeError naming
    each bad field."""
    errors: dict[str, str] = {}
    today = today or timezone.localdate()
    raw_to = query.get("to") or today.isoformat()
    date_to = parse_day(raw_to, "to", errors, today=today)
    default_from = max((date_to or today) - timedelta(days=default_days - 1), FIRST_DAY)
    raw_from = query.get("from") or default_from.isoformat()
    date_from = parse_day(raw_from, "from", errors, today=today)
    team_id = _id(query.get("team"), "team", errors)
    service_id = _id(query.get("service"), "service", errors)
    # The permission scope (role, teams) from default, even under @replica_view: a replica a few seconds
    # behind would still show a team's figures to someone just removed from it.
    with primary_reads():
        return _build(user, date_from, date_to, team_id, service_id, errors)


def scope_of(user, *, date_from: date, date_to: date, team: Team | None = None,
             service: Service | None = None) -> Scope:
    """The scope of stored choices (an improvement, a subscription) as `user` may see it."""
    return _build(user, date_from, date_to, team.id if team else None, service.id if service else None, {})
