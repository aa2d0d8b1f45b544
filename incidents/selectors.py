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


# What a queue row shows; nothing else is read (fewer joins also keep PostgreSQL's planning time short).
ROW_FIELDS = (
    "id", "number", "title", "priority", "status", "hold_reason", "major", "created_at", "updated_at",
    "requester__id", "requester__username", "requester__first_name", "requester__last_name",
    "assignee__id", "assignee__username", "assignee__first_name", "assignee__last_name",
    "assignment_group__id", "assignment_group__name",
    "service__id", "service__name",
)


def incidents_for_rows(user) -> QuerySet[Incident]:
    """The queue-row shape: the four related names a row shows, in the same query, and only their columns."""
    return (
        incidents_visible_to(user)
        .select_related("requester", "assignee", "assignment_group", "service")
        .only(*ROW_FIELDS)
    )
