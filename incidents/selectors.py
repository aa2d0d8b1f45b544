"""Read paths with permission built into the query."""

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, QuerySet

from incidents.models import Category, Incident
from servicedesk.models import ConfigurationItem, Service, Team
from servicedesk.roles import is_staff_role


def incidents_visible_to(user) -> QuerySet[Incident]:
    """Agents, managers and admins see every incident; a requester sees only their own."""
    qs = Incident.objects.all()
    if not user.is_authenticated:
        return qs.none()
    if is_staff_role(user):
        return qs
    return qs.filter(requester=user)


def incident_number_visible(user, text: str) -> str | None:
    """The number `text` names ('INC0001042', 'inc1042', '1042') if that incident is one `user` may see."""
    from incidents.search import number_of

    number = number_of(text)
    if number is None or not incidents_visible_to(user).filter(number=number).exists():
        return None
    return number


def _names():
    """Related rows as lists show them: a few columns each, fetched by one `id IN (...)` query per relation.

    Prefetching, not JOINs: with six joins PostgreSQL spends ~12 ms planning each list query (measured in
    bench/bench_incident_list.py); six indexed look-ups of at most a page of ids cost ~1 ms together."""
    users = get_user_model().objects.only("id", "username", "first_name", "last_name", "email")
    return [
        Prefetch("requester", queryset=users),
        Prefetch("assignee", queryset=users),
        Prefetch("assignment_group", queryset=Team.objects.only("id", "name")),
        Prefetch("service", queryset=Service.objects.only("id", "name")),
    ]


def incidents_for_list(user) -> QuerySet[Incident]:
    """The API list shape: every related name a row shows, a constant number of queries whatever the page size,
    and never the (large) search document."""
    return (
        incidents_visible_to(user)
        .defer("search_vector")
        .prefetch_related(
            *_names(),
            Prefetch("configuration_item", queryset=ConfigurationItem.objects.only("id", "name")),
            Prefetch("category", queryset=Category.objects.only("id", "name", "parent_id")),
        )
    )


# What a queue row shows; nothing else is read.
ROW_FIELDS = (
    "id", "number", "title", "priority", "status", "hold_reason", "major", "created_at", "updated_at", "version",
    "requester_id", "assignee_id", "assignment_group_id", "service_id",
)


def incidents_for_rows(user) -> QuerySet[Incident]:
    """The queue-row shape: only the row's columns, and the four related names a row shows."""
    return incidents_visible_to(user).only(*ROW_FIELDS).prefetch_related(*_names())


def incidents_for_detail(user) -> QuerySet[Incident]:
    """One incident with what its page shows, in one query; its parent, which few incidents have, is read only
    when there is one (every join costs PostgreSQL planning time on the busiest page of the desk)."""
    return incidents_visible_to(user).defer("search_vector").select_related(
        "requester", "assignee", "assignment_group", "service", "configuration_item", "category__parent",
        "updated_by",
    )
