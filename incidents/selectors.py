"""Read paths with permission built into the query."""

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, QuerySet

from incidents.models import Category, Incident
from servicedesk.models import ConfigurationItem, Service, Team
from servicedesk.refcache import rows_cached
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


def incidents_for_page(user) -> QuerySet[Incident]:
    """`incidents_for_detail` for the incident's agent page and its actions: the people and the configuration item
    joined; its team, service and category come from the kernel's kept rows (`with_references`). With all of
    them joined PostgreSQL spent 1.8 ms planning the 8-way join for 0.4 ms of work, on the busiest page."""
    return incidents_visible_to(user).defer("search_vector").select_related(
        "requester", "assignee", "configuration_item", "updated_by")


def with_references(incident: Incident) -> Incident:
    """The incident with its team, service and category (and the category's parent) attached from the kept rows
    (servicedesk.refcache.rows_cached: one cache round trip, a query only for a row not kept yet)."""
    links = (("assignment_group", Team, incident.assignment_group_id), ("service", Service, incident.service_id),
             ("category", Category, incident.category_id))
    rows = rows_cached({model: [pk] for _, model, pk in links if pk is not None})
    for name, model, pk in links:
        if pk is not None and pk in rows.get(model, {}):
            setattr(incident, name, rows[model][pk])
    return incident


def incidents_for_detail(user) -> QuerySet[Incident]:
    """One incident with what its page shows, in one query; its parent, which few incidents have, is read only
    when there is one (every join costs PostgreSQL planning time on the busiest page of the desk)."""
    return incidents_visible_to(user).defer("search_vector").select_related(
        "requester", "assignee", "assignment_group", "service", "configuration_item", "category__parent",
        "updated_by",
    )
