"""Read paths of the agent workspace: queues, their counts, sorting, filtering and the pick lists.

Everything starts from incidents.selectors (incidents_for_rows / incidents_visible_to), so the permission
stays in the query; this module only narrows, orders and annotates. A queue page costs the same number of
queries whatever its page size: related rows come through select_related and the child count through a
correlated subquery, never a query per row.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Case, Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import QueryDict
from django.utils import timezone

from incidents.filters import IncidentFilter
from incidents.models import CannedResponse, Category, Incident, ResolutionCode, SavedView
from incidents.selectors import incidents_for_rows, incidents_visible_to
from incidents.sla import TICKET_TYPE
from incidents.states import OPEN, Status
from servicedesk.keyset import keyset_page
from servicedesk.models import ConfigurationItem, Service, Team, TeamMembership
from servicedesk.refcache import reference_data
from servicedesk.roles import STAFF_ROLES
from servicedesk.sidebar import queue_counts_split
from servicedesk.workspace import queue_ordering, queue_sort_key
from sla.clocks import clocks_of
from sla.display import clock_views, most_urgent


@dataclass(frozen=True)
class Queue:
    key: str
    label: str
    icon: str
    hint: str
    default_sort: str = "priority"


QUEUES = [
    Queue("mine", "Mine", "i-user", "Open incidents assigned to me"),
    Queue("team", "My teams", "i-users", "Open and unassigned, in one of my teams"),
    Queue("unassigned", "Unassigned", "i-user-x", "Open incidents nobody owns yet"),
    Queue("all", "All open", "i-circle-dot", "Every open incident"),
    Queue("hold", "On hold", "i-pause", "Waiting for the caller, a vendor or a change"),
    Queue("major", "Major", "i-flame", "Major incidents, open ones first, with their linked incidents"),
    Queue("breaching", "Breaching soon", "i-clock", "Open incidents due within the hour or already late",
          default_sort="sla"),
    # "Recent" is about what moved lately, so it sorts by the last change rather than by priority.
    Queue("recent", "Recent", "i-clock", "Every status, latest change first", default_sort="-updated_at"),
]
QUEUE_BY_KEY = {q.key: q for q in QUEUES}
SEARCH = Queue("search", "Search", "i-search", "Every status", default_sort="-updated_at")

PER_PAGE_CHOICES = (25, 50, 100)

# ?sort= whitelist: key -> the columns it orders by. "-key" reverses them. Ties fall back to the latest change.
SORTS = {
    "number": ("number",),
    "priority": ("priority",),
    "title": ("title",),
    "requester": ("requester__first_name", "requester__last_name", "requester__username"),
    "service": ("service__name",),
    "status": ("status_rank",),
    "assignee": ("assignment_group__name", "assignee__first_name", "assignee__username"),
    "updated_at": ("updated_at",),
    "created_at": ("created_at",),
    "sla": ("sla_due_at",),
}
# "Breaching soon": open incidents whose next SLA deadline (Ticket.sla_due_at) is at most this far ahead.
BREACHING_WINDOW = timedelta(hours=1)
STATUS_RANK = Case(
    *[When(status=s, then=Value(i)) for i, s in enumerate(Status.values)], output_field=IntegerField()
)


def my_team_ids(user):
    """The ids of the user's teams as a subquery: it joins the query that uses it, costing no round trip."""
    return TeamMembership.objects.filter(user=user).values("team_id")


def queue_condition(user, key: str, now=None) -> Q:
    open_q = Q(status__in=OPEN)
    if key == "breaching":
        return open_q & Q(sla_due_at__lte=(now or timezone.now()) + BREACHING_WINDOW)
    return {
        "mine": open_q & Q(assignee=user),
        "team": open_q & Q(assignee__isnull=True, assignment_group__in=my_team_ids(user)),
        "unassigned": open_q & Q(assignee__isnull=True),
        "all": open_q,
        "hold": Q(status=Status.ON_HOLD),
        "major": Q(major=True),
        "recent": Q(),
        "search": Q(),
    }[key]


PERSONAL_COUNTS = ("mine", "team")  # the rest are the same for every agent (agents see every incident)


def queue_counts(user, now=None, keys=None) -> dict[str, int]:
    """Every open queue's count (open majors for "major") and the P1/P2 tile, or those in `keys`, in one
    aggregate query.

    It reads only open incidents (the partial queue index), so its cost follows the open workload, not the
    history: "recent" (every status) has no count for that reason."""
    counts = {
        "breaching": Count("id", filter=queue_condition(user, "breaching", now)),
        "mine": Count("id", filter=queue_condition(user, "mine")),
        "team": Count("id", filter=queue_condition(user, "team")),
        "unassigned": Count("id", filter=queue_condition(user, "unassigned")),
        "all": Count("id"),
        "hold": Count("id", filter=queue_condition(user, "hold")),
        "major": Count("id", filter=Q(major=True)),
        "critical": Count("id", filter=Q(priority__lte=2)),
    }
    return incidents_visible_to(user).filter(status__in=OPEN).aggregate(
        **{name: count for name, count in counts.items() if keys is None or name in keys})


def queue_counts_of(request) -> dict[str, int]:
    """`queue_counts` once per request (the sidebar and the dashboard's tiles share it), kept for
    SIDEBAR_COUNTS_SECONDS (servicedesk.sidebar): the desk's counts once for every agent, "mine" and "team"
    per person. Only for staff pages: a requester would not see every incident."""
    return queue_counts_split(request, "incidents", lambda keys: queue_counts(request.user, keys=keys),
                              desk=("breaching", "unassigned", "all", "hold", "major", "critical"),
                              personal=PERSONAL_COUNTS)


def with_children_count(queryset: QuerySet[Incident]) -> QuerySet[Incident]:
    children = (
        Incident.objects.filter(parent=OuterRef("pk")).order_by().values("parent").annotate(n=Count("id")).values("n")
    )
    return queryset.annotate(children_count=Coalesce(Subquery(children), 0))


def sort_key(raw: str | None, default: str) -> str:
    return queue_sort_key(raw, SORTS, default)


def ordering(sort: str) -> list:
    return queue_ordering(sort, SORTS, Incident)


def queue_queryset(user, key: str, sort: str) -> QuerySet[Incident]:
    # A row never shows the description or the search document: only the row's columns are read.
    qs = incidents_for_rows(user).filter(queue_condition(user, key))
    qs = with_children_count(qs)
    order = ordering(sort)
    if sort.lstrip("-") == "status":
        qs = qs.annotate(status_rank=STATUS_RANK)
    if key == "major":
        # Open majors are the ones that need people now; closed ones stay below for reference.
        qs = qs.annotate(closed_rank=Case(When(status__in=OPEN, then=Value(0)), default=Value(1),
                                          output_field=IntegerField()))
        order.insert(0, F("closed_rank").asc())
    return qs.order_by(*order)


def clean_params(params: QueryDict) -> QueryDict:
    """The query without empty values: "Any status" sends status=, which means no filter, not status ''."""
    cleaned = QueryDict(mutable=True)
    for key in params:
        values = [v for v in params.getlist(key) if v.strip()]
        if values:
            cleaned.setlist(key, values)
    return cleaned


def filter_data(params: QueryDict) -> QueryDict:
    """The filter form sends assignee=unassigned; IncidentFilter spells that unassigned=true."""
    data = params.copy()
    if data.get("assignee") == "unassigned":
        data.pop("assignee")
        data["unassigned"] = "true"
    return data


def with_sla(page, now=None):
    """Give each row of an evaluated page `sla_clock`: the view of its most urgent SLA clock (sla.display), or None.
    The clocks of the whole page come in one query."""
    now = now or timezone.now()
    found = clocks_of(TICKET_TYPE, [incident.id for incident in page.object_list])
    for incident in page.object_list:
        incident.sla_clock = most_urgent(clock_views(found.get(incident.id, []), now, ola=False))
    return page


def rows_page(queryset, per_page: int, cursor):
    """One page of queue rows with their SLA cells: the page (keyset, servicedesk.keyset: the
    rows after the cursor, never an OFFSET), its count capped at LIST_COUNT_CAP, and one query for its clocks.
    A damaged cursor shows the first page."""
    try:
        page = keyset_page(queryset, per_page=per_page, cursor=cursor)
    except ValueError:
        page = keyset_page(queryset, per_page=per_page)
    return with_sla(page)


def per_page_of(raw) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return PER_PAGE_CHOICES[0]
    return value if value in PER_PAGE_CHOICES else PER_PAGE_CHOICES[0]


def queue_filtered(request, queue: Queue, params: QueryDict) -> tuple[QueryDict, str, IncidentFilter]:
    """One queue for the request's user, filtered and sorted (the cleaned params, the sort, the FilterSet whose
    `.qs` holds every matching row): what the page paginates and what its CSV/XLSX export reads in full."""
    params = clean_params(params)
    sort = sort_key(params.get("sort"), queue.default_sort)
    base = queue_queryset(request.user, queue.key, sort)
    return params, sort, IncidentFilter(filter_data(params), queryset=base, request=request)


def queue_page(request, queue: Queue, params: QueryDict) -> dict:
    """Filter, sort and paginate one queue for the request's user. Returns what the table partial needs."""
    params, sort, filterset = queue_filtered(request, queue, params)
    per_page = per_page_of(params.get("per_page"))
    page = rows_page(filterset.qs, per_page, params.get("cursor"))
    return {
        "queue": queue,
        "filterset": filterset,
        "page": page,
        "sort": sort,
        "per_page": per_page,
        "params": params,
        "selected": {
            "status": params.getlist("status"),
            "priority": params.getlist("priority"),
            "assignment_group": params.get("assignment_group", ""),
            "assignee": params.get("assignee", ""),
            "service": params.get("service", ""),
        },
    }


# --- pick lists -------------------------------------------------------------------------------------


def agents() -> QuerySet:
    """People who can be assigned: active users in a staff role, and superusers."""
    User = get_user_model()
    return (
        User.objects.filter(is_active=True)
        .filter(Q(groups__name__in=[r.value for r in STAFF_ROLES]) | Q(is_superuser=True))
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


def team_members(team) -> QuerySet:
    return agents().filter(memberships__team=team)


def teams() -> QuerySet[Team]:
    return Team.objects.order_by("name")


def services() -> QuerySet[Service]:
    return Service.objects.filter(active=True).order_by("name")


def configuration_items() -> QuerySet[ConfigurationItem]:
    return ConfigurationItem.objects.exclude(state=ConfigurationItem.State.RETIRED).order_by("name")


def categories() -> QuerySet[Category]:
    """Parents first, each followed by its subcategories."""
    return Category.objects.select_related("parent").order_by(
        Coalesce("parent__name", "name"), F("parent_id").asc(nulls_first=True), "name"
    )


def resolution_codes() -> QuerySet[ResolutionCode]:
    return ResolutionCode.objects.filter(active=True)


# The codes every incident page and queue page offers, read once for the whole desk until one changes.
active_resolution_codes = reference_data("incidents:resolution-codes", lambda: list(resolution_codes()),
                                         models=[ResolutionCode])


def canned_responses_for(user) -> QuerySet[CannedResponse]:
    """Active canned responses offered to everyone or to one of the user's teams."""
    return CannedResponse.objects.filter(active=True).filter(
        Q(team__isnull=True) | Q(team__in=my_team_ids(user))
    ).order_by("title")


def saved_views_of(user) -> QuerySet[SavedView]:
    return SavedView.objects.filter(owner=user).order_by("name")


def children_of(incident, user) -> list[Incident]:
    return list(
        incidents_visible_to(user).filter(parent=incident).only("id", "number", "title", "status", "priority")
        .order_by("-created_at", "-id")
    )
