"""What incident management adds to the kernel (servicedesk.registry): its workspace queues and saved views,
the portal's "Report an issue" tile and "My tickets" rows, global search, webhook events, API routes and demo
data. Imported once by IncidentsConfig.ready(); nothing in the kernel imports this app."""

from urllib.parse import urlencode

from django.urls import reverse

from incidents import workspace
from incidents.search import search_filter
from incidents.selectors import incident_number_visible, incidents_for_rows
from servicedesk.registry import (
    DemoStep,
    NavItem,
    PortalTile,
    SearchProvider,
    SearchResults,
    TicketBrief,
    TicketKind,
    TicketRow,
    TicketSource,
    WorkspaceSection,
    registry,
)
from servicedesk.roles import is_staff_role
from servicedesk.sidebar import sidebar_counts
from sla.registry import ticket_type as sla_ticket_type

EVENTS = {
    "incident.created": "An incident was raised",
    "incident.updated": "Fields of an incident changed",
    "incident.assigned": "An incident's group or assignee changed",
    "incident.started": "Work on an incident started",
    "incident.held": "An incident was put on hold",
    "incident.resumed": "An incident on hold was resumed",
    "incident.resolved": "An incident was resolved",
    "incident.reopened": "A resolved incident was reopened",
    "incident.closed": "An incident was closed",
    "incident.cancelled": "An incident was cancelled",
    "incident.commented": "A public reply was added",
    "incident.escalated": "An incident's priority was raised",
    "incident.major": "An incident was declared major",
}


HOT_QUEUES = {"major", "breaching"}  # a count in these needs someone now: drawn red


def _home_nav(request, current: str) -> list[NavItem]:
    return [NavItem("Dashboard", reverse("agent:dashboard"), "i-inbox", current=current == "dashboard")]


def _queues_nav(request, current: str) -> list[NavItem]:
    counts = workspace.queue_counts_of(request)
    return [
        NavItem(
            queue.label, reverse("agent:queue", kwargs={"key": queue.key}), queue.icon, count=counts.get(queue.key),
            current=current == f"queue:{queue.key}", hot=queue.key in HOT_QUEUES and bool(counts.get(queue.key)),
            testid=f"nav-queue-{queue.key}",
        )
        for queue in workspace.QUEUES
    ]


def _saved_views_nav(request, current: str) -> list[NavItem]:
    # Kept with the sidebar's counts (servicedesk.sidebar): only their owner changes them, which drops them.
    views = sidebar_counts(request, "saved-views",
                           lambda: {"views": list(workspace.saved_views_of(request.user).values_list("id", "name"))})
    return [
        NavItem(name, reverse("agent:saved_view", kwargs={"view_id": view_id}), "i-bookmark",
                current=current == f"view:{view_id}")
        for view_id, name in views["views"]
    ]


def _row(incident, *, for_agent: bool) -> TicketRow:
    return TicketRow(
        kind="incident", number=incident.number, title=incident.title, status=incident.status,
        status_label=incident.get_status_display() if for_agent else incident.requester_status,
        updated_at=incident.updated_at,
        url=reverse("agent:incident" if for_agent else "portal:incident", kwargs={"number": incident.number}),
        snippet=incident.service.name if incident.service_id else "",
    )


def _mine(user, limit: int) -> list[TicketRow]:
    """Incidents the person raised (agents included: the portal is everyone's own view)."""
    rows = incidents_for_rows(user).filter(requester=user).order_by("-updated_at", "-id")[:limit]
    return [_row(incident, for_agent=False) for incident in rows]


def _search(user, q: str, limit: int) -> SearchResults:
    agent = is_staff_role(user)
    found = search_filter(incidents_for_rows(user), q, include_internal=agent).order_by("-updated_at", "-id")
    more = f"{reverse('agent:search')}?{urlencode({'q': q})}" if agent else ""
    return SearchResults([_row(i, for_agent=agent) for i in found[:limit]], more_url=more)


def _find_number(user, text: str) -> str | None:
    number = incident_number_visible(user, text)
    if number is None:
        return None
    return reverse("agent:incident" if is_staff_role(user) else "portal:incident", kwargs={"number": number})


def _find(user, number: str):
    """The incident `number` names if `user` may open it on the agent page."""
    if not is_staff_role(user):
        return None
    from incidents.selectors import incidents_for_detail

    return incidents_for_detail(user).filter(number=(number or "").strip().upper()).first()


def _brief(incident) -> TicketBrief:
    from incidents.states import FINAL, Status

    return TicketBrief(
        kind="incident", number=incident.number, title=incident.title, description=incident.description,
        status=incident.status, status_label=incident.get_status_display(),
        url=reverse("agent:incident", kwargs={"number": incident.number}),
        solved=incident.status in (Status.RESOLVED, Status.CLOSED),
        can_reply=incident.status not in FINAL,
        resolution=incident.resolution_notes,
        service_ids=(incident.service_id,) if incident.service_id else (),
    )


def _reply(*, ticket, author, body: str, files=(), data=None, internal: bool = False):
    """A public reply from another app's page (e.g. "Send as reply" of a suggested article) or by mail: the
    same service as the reply box, so the requester and the watchers are mailed, the first response counts,
    and a requester's or watcher's reply reopens or resumes the incident. `internal`: an internal note
    instead (an agent's answer by mail to agent-only mail), which reaches nobody outside the desk."""
    from incidents.services import incident_comment_add

    return incident_comment_add(incident=ticket, author=author, body=body, internal=internal, files=files,
                                data=data)


def _get(number: str):
    """The incident `number` names, whoever asks (the email channel's lookup; no permission check)."""
    from incidents.models import Incident

    return (Incident.objects.select_related("requester").filter(number=(number or "").strip().upper()).first())


def _accepts_reply(incident) -> bool:
    from incidents.states import FINAL

    return incident.status not in FINAL


def _create_from_mail(*, intake):
    """A new incident from a mail (channel "email"): the subject is the title, the reply text the description,
    the mailbox's service, category and team its defaults; attachments go on it (public), and `intake.data`
    (which mail) on its "created" entry. InvalidInput when the mailbox names a category that is gone."""
    from django.db import transaction

    from incidents.models import Category, Channel
    from incidents.services import incident_create
    from servicedesk.errors import InvalidInput
    from servicedesk.services import attachment_add

    category = None
    if intake.category_id is not None:
        category = Category.objects.filter(id=intake.category_id).first()
        if category is None:
            raise InvalidInput(f"category: there is no category {intake.category_id}", field="category")
    title = " ".join((intake.title or "").split()) or "(no subject)"
    with transaction.atomic():
        incident = incident_create(title=title, description=intake.body or "", requester=intake.requester,
                                   created_by=intake.requester, channel=Channel.EMAIL, service=intake.service,
                                   category=category, assignment_group=intake.team, data=dict(intake.data))
        for upload in intake.files:
            attachment_add(ticket=incident, upload=upload, by=intake.requester, internal=False)
    return incident


def _seed(options: dict) -> str:
    from incidents.demo import seed_incidents

    return seed_incidents(tickets=options.get("tickets", 0))


def register() -> None:
    from incidents import retention

    retention.register()  # retention: what goes and what stays (docs/retention.md)
    from django.db.models.signals import post_delete

    from incidents.api import IncidentViewSet
    from incidents.models import Incident
    from incidents.search import search_forget

    post_delete.connect(search_forget, sender=Incident, dispatch_uid="incidents-search-forget")

    registry.workspace_section(WorkspaceSection("home", "", _home_nav, order=0))
    registry.workspace_section(WorkspaceSection("queues", "Incidents", _queues_nav, order=10))
    registry.workspace_section(WorkspaceSection("saved-views", "Saved views", _saved_views_nav, order=90,
                                                empty="Filter a queue, then Save view."))
    registry.portal_tile(PortalTile("report", "Report an issue", "Something is broken or not working as it should",
                                    "portal:report", icon="i-plus", order=10))
    registry.ticket_source(TicketSource("incidents", "Incidents", _mine, order=10))
    registry.ticket_kind(TicketKind("incident", "Incident", find=_find, brief=_brief, reply=_reply, prefix="INC",
                                    get=_get, create_from_mail=_create_from_mail, accepts_reply=_accepts_reply))
    registry.search_provider(SearchProvider("incidents", "Incidents", _search, _find_number, order=10))
    registry.notification_events("incidents", EVENTS)
    registry.api_route("incidents", IncidentViewSet, basename="incident")
    registry.demo_step(DemoStep("incidents", _seed, after=("sla",)))
    from incidents.models import OPEN_STATUSES
    from servicedesk.metrics import ticket_metrics

    registry.metric(ticket_metrics("incident", Incident, OPEN_STATUSES))
    from django.db.models.signals import post_delete

    from incidents.models import Incident
    from incidents.sla import IncidentSlaAdapter, clocks_drop_with_incident

    post_delete.connect(clocks_drop_with_incident, sender=Incident, dispatch_uid="incidents.sla.clocks_drop")

    from incidents.states import HoldReason, Status

    statuses = [*Status.values, *(f"{Status.ON_HOLD}:{reason}" for reason in HoldReason.values)]
    # SLA policies may apply to incidents; their pause statuses name these.
    sla_ticket_type("incident", "Incident", adapter=IncidentSlaAdapter(), statuses=statuses)
