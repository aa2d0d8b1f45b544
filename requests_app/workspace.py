"""Service requests in the agent workspace: the "Requests" queues, their counts, sorting and pages.

Every query starts from requests_app.selectors.requests_for (agents see every request; the views are for agents
only), and the open queues read only open requests through the partial indexes of migration 0005_workspace, so a
queue costs what the open workload costs, not the history."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from requests_app.models import ServiceRequest
from requests_app.selectors import requests_for
from requests_app.sla import TICKET_TYPE
from requests_app.states import OPEN, Status
from servicedesk.keyset import keyset_page
from servicedesk.models import Team, TeamMembership
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
    hot: bool = False  # a count in it needs someone now: drawn red in the sidebar


# The labels name requests where the incidents' queues have the same words: on a phone the sidebar loses its
# section headings, and a link list must not read "My teams" twice.
QUEUES = [
    Queue("mine", "My requests", "i-user", "Open requests assigned to me"),
    Queue("team", "Team requests", "i-users", "Open requests of one of my teams"),
    Queue("unassigned", "No assignee", "i-user-x", "Open requests nobody works on yet"),
    Queue("failed", "Failed", "i-alert", "Automated fulfilment gave up: a person must act", hot=True),
    Queue("approval", "Pending approval", "i-pause", "Waiting for an approver's decision"),
    Queue("all", "All open requests", "i-circle-dot", "Every open request"),
]
QUEUE_BY_KEY = {q.key: q for q in QUEUES}

PER_PAGE_CHOICES = (25, 50, 100)
DEFAULT_SORT = "sla"
# ?sort= whitelist: key -> the columns it orders by ("-key" reverses them); ties fall back to the id.
SORTS = {
    "number": ("number",),
    "sla": ("sla_due_at",),
    "updated_at": ("updated_at",),
    "created_at": ("created_at",),
}


def my_team_ids(user):
    """The ids of the user's teams as a subquery (joined into the query that uses it, no round trip)."""
    return TeamMembership.objects.filter(user=user).values("team_id")


def queue_condition(user, key: str) -> Q:
    open_q = Q(status__in=OPEN)
    return {
        "mine": open_q & Q(assignee=user),
        "team": open_q & Q(assignment_group__in=my_team_ids(user)),
        "unassigned": open_q & Q(assignee__isnull=True),
        "failed": Q(status=Status.FAILED),
        "approval": Q(status=Status.PENDING_APPROVAL),
        "all": open_q,
    }[key]


PERSONAL_COUNTS = ("mine", "team")  # the rest are the same for every agent (agents see every request)


def queue_counts(user, keys=None) -> dict[str, int]:
    """Every queue's count, or those in `keys`, in one aggregate query over the open requests (each queue is a
    part of them)."""
    counts = {q.key: Count("id", filter=queue_condition(user, q.key)) for q in QUEUES if q.key != "all"}
    counts["all"] = Count("id")
    return requests_for(user).order_by().filter(status__in=OPEN).aggregate(
        **{name: count for name, count in counts.items() if keys is None or name in keys})


def queue_counts_of(request) -> dict[str, int]:
    """`queue_counts` once per HTTP request, however many parts of the page ask, kept for
    SIDEBAR_COUNTS_SECONDS (servicedesk.sidebar): the desk's counts once for every agent, "mine" and "team"
    per person. Only for staff pages: a requester would not see every request."""
    return queue_counts_split(request, "requests", lambda keys: queue_counts(request.user, keys=keys),
                              desk=[q.key for q in QUEUES if q.key not in PERSONAL_COUNTS], personal=PERSONAL_COUNTS)


def sort_key(raw: str | None) -> str:
    return queue_sort_key(raw, SORTS, DEFAULT_SORT)


def ordering(sort: str) -> list:
    return queue_ordering(sort, SORTS, ServiceRequest)


def queue_queryset(user, key: str, sort: str) -> QuerySet[ServiceRequest]:
    """One queue's requests with the row's related names in the same query (select_related of requests_for);
    the answers and description are not read for a row."""
    return requests_for(user).filter(queue_condition(user, key)).defer("answers", "description").order_by(
        *ordering(sort))


def per_page_of(raw) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return PER_PAGE_CHOICES[0]
    return value if value in PER_PAGE_CHOICES else PER_PAGE_CHOICES[0]


def rows_page(queryset, per_page: int, cursor, now=None):
    """One page of rows, each with `sla_clock` (its most urgent SLA clock, sla.display): the
    keyset page after `cursor` (servicedesk.keyset; a damaged cursor shows the first page), its count capped at
    LIST_COUNT_CAP and one query for the clocks of the whole page."""
    now = now or timezone.now()
    try:
        page = keyset_page(queryset, per_page=per_page, cursor=cursor)
    except ValueError:
        page = keyset_page(queryset, per_page=per_page)
    found = clocks_of(TICKET_TYPE, [r.id for r in page.object_list])
    for row in page.object_list:
        row.sla_clock = most_urgent(clock_views(found.get(row.id, []), now, ola=False))
    return page


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
    """The agents of `team` (none without a team)."""
    if team is None:
        return agents().none()
    return agents().filter(memberships__team=team)


def teams() -> QuerySet[Team]:
    return Team.objects.order_by("name")
