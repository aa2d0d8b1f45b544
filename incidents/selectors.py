"""Read paths with permission built into the query."""

from django.db.models import QuerySet

from incidents.models import Incident
from servicedesk.roles import is_staff_role


def incidents_visible_to(user) -> QuerySet[Incident]:
    """Agents, managers and admins see every incident; a requester sees only their own."""
    qs = Incident.objects.all()
    if not user.is_authenticated:
        return qs.none()
    if is_staff_role(user):
        return qs
    return qs.filter(requester=user)


def incidents_for_list(user) -> QuerySet[Incident]:
    """The list shape: every related name a row shows, fetched in the same query."""
    return incidents_visible_to(user).select_related(
        "requester", "assignee", "assignment_group", "service", "configuration_item", "category"
    )
