"""Where a new incident goes: the first matching assignment rule (else the service's owner team), and which
agent of that team gets it (round robin or least loaded, skipping agents who are away)."""


from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from incidents.models import AssignmentRule, Incident
from incidents.states import OPEN
from servicedesk.models import Team, TeamMembership

# --- routing and assignment -----------------------------------------------------------------------


def route(*, title: str, description: str, category=None, service=None, configuration_item=None) -> Team | None:
    """The first active assignment rule whose every set condition matches, else the service's owner."""
    text = f"{title}\n{description}".lower()
    category_ids = {category.id, category.parent_id} - {None} if category is not None else set()
    for rule in AssignmentRule.objects.filter(active=True).select_related("team"):
        if rule.category_id and rule.category_id not in category_ids:
            continue
        if rule.service_id and (service is None or rule.service_id != service.id):
            continue
        if rule.configuration_item_id and (configuration_item is None or rule.configuration_item_id != configuration_item.id):
            continue
        keywords = rule.keyword_list()
        if keywords and not any(k in text for k in keywords):
            continue
        if not (rule.category_id or rule.service_id or rule.configuration_item_id or keywords):
            continue  # a rule without conditions would swallow everything; it is ignored
        return rule.team
    if service is not None and service.owner_team_id:
        return service.owner_team
    if configuration_item is not None and configuration_item.owner_team_id:
        return configuration_item.owner_team
    return None


def pick_assignee(team: Team | None, *, now=None):
    """Round robin or least loaded among the team's active members who are not away; None for manual."""
    if team is None or team.assignment_strategy == Team.Strategy.MANUAL:
        return None
    now = now or timezone.now()
    members = (
        TeamMembership.objects.filter(team=team, user__is_active=True)
        .exclude(user__profile__away=True)
        .select_related("user")
    )
    if team.assignment_strategy == Team.Strategy.LEAST_LOADED:
        # A correlated subquery, not a JOIN + GROUP BY: FOR UPDATE cannot lock grouped rows.
        open_load = (
            Incident.objects.filter(assignee=OuterRef("user_id"), status__in=OPEN)
            .order_by().values("assignee").annotate(n=Count("id")).values("n")
        )
        members = members.annotate(load=Coalesce(Subquery(open_load), 0)).order_by(
            "load", F("last_assigned_at").asc(nulls_first=True), "id"
        )
    else:
        members = members.order_by(F("last_assigned_at").asc(nulls_first=True), "id")
    # Lock the chosen membership so two concurrent creations do not both pick the same "next" agent.
    chosen = members.select_for_update(of=("self",), skip_locked=True).first()
    if chosen is None:
        return None
    TeamMembership.objects.filter(id=chosen.id).update(last_assigned_at=now)
    return chosen.user
