"""What the service catalog and service requests add to the kernel (servicedesk.registry): their API, the
workspace's "Requests" queues, global search, the portal's "My tickets" rows, the SLA ticket type "request" and
the demo catalog. Imported once by RequestsAppConfig.ready(); nothing in the kernel imports this app."""

import re

from django.db.models import Q
from django.urls import reverse

from servicedesk.registry import (
    DemoStep,
    NavItem,
    PortalHit,
    PortalPanel,
    PortalSearchProvider,
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

NUMBER = re.compile(r"^\s*REQ0*(\d{1,9})\s*$", re.IGNORECASE)


def _seed(options: dict) -> str:
    from requests_app.demo import seed_approvals, seed_catalog, seed_request_policy, seed_requests
    from requests_app.seed_bulk import seed_request_history

    done = f"{seed_catalog()}; {seed_request_policy()}; {seed_approvals()}; {seed_requests()}"
    # After the demo orders: they are made only while their requesters have no request yet.
    made = seed_request_history(options["tickets"]) if options.get("tickets") else 0
    return f"{done}; {made} generated requests"


def _row(r, *, for_agent: bool) -> TicketRow:
    return TicketRow(kind="request", number=r.number, title=r.title, status=r.status,
                     status_label=r.get_status_display(), updated_at=r.updated_at,
                     url=reverse("agent:request" if for_agent else "portal:request", kwargs={"number": r.number}),
                     snippet=r.item.name)


def _mine(user, limit: int) -> list[TicketRow]:
    """Requests the person raised, newest change first (one query), linking to their portal pages (agents
    included: the portal is everyone's own view)."""
    from requests_app.selectors import requests_for

    rows = requests_for(user).filter(requester=user).order_by("-updated_at", "-id")[:limit]
    return [_row(r, for_agent=False) for r in rows]


def number_of(text: str) -> str | None:
    """'REQ0001042' or 'req1042' -> 'REQ0001042'; anything else (a bare number is an incident's) -> None."""
    from servicedesk.numbering import number_format

    match = NUMBER.match(text or "")
    return number_format("REQ", int(match.group(1))) if match else None


def _search(user, q: str, limit: int) -> SearchResults:
    """Requests whose number is `q`, or whose title or item name holds every word of it; agents see all (and go
    to the agent page), anyone else only their own (and goes to the portal page)."""
    from requests_app.selectors import requests_for

    agent = is_staff_role(user)
    rows = requests_for(user)
    number = number_of(q)
    if number:
        rows = rows.filter(number=number)
    else:
        words = q.split()
        if not words:
            return SearchResults([])
        for word in words[:8]:
            rows = rows.filter(Q(title__icontains=word) | Q(item__name__icontains=word))
    rows = rows.order_by("-updated_at", "-id")[:limit]
    return SearchResults([_row(r, for_agent=agent) for r in rows])


def _find_number(user, text: str) -> str | None:
    from requests_app.selectors import requests_for

    number = number_of(text)
    if number is None or not requests_for(user).filter(number=number).exists():
        return None
    return reverse("agent:request" if is_staff_role(user) else "portal:request", kwargs={"number": number})


def _requests_nav(request, current: str) -> list[NavItem]:
    """The "Requests" queues of the workspace sidebar with their counts (one aggregate query), then the
    approvals inbox (one count)."""
    from requests_app import workspace

    counts = workspace.queue_counts_of(request)
    return [
        NavItem(queue.label, reverse("agent:request_queue", kwargs={"key": queue.key}), queue.icon,
                count=counts.get(queue.key), current=current == f"requests:{queue.key}",
                hot=queue.hot and bool(counts.get(queue.key)), testid=f"nav-requests-{queue.key}")
        for queue in workspace.QUEUES
    ] + _approvals_nav(request, current)


def _approvals_nav(request, current: str) -> list[NavItem]:
    """The workspace's approvals inbox, with how many wait for this person (admins: everyone's), no number when
    none does; one query."""
    from requests_app.selectors import approvals_pending_count

    count = sidebar_counts(request, "approvals", lambda: {"pending": approvals_pending_count(request.user)})["pending"]
    return [NavItem("Approvals", reverse("agent:approvals"), "i-check-circle", count=count or None,
                    current=current == "approvals", testid="nav-approvals")]


PANEL_ROWS = 5


def _approvals_panel(request) -> dict | None:
    """The portal home card "Waiting for my approval": the oldest few and how many in all; None when nothing
    waits (two queries)."""
    from requests_app.selectors import approvals_pending_count, approvals_pending_for

    count = approvals_pending_count(request.user)
    if not count:
        return None
    rows = list(approvals_pending_for(request.user).prefetch_related(None)[:PANEL_ROWS])
    return {"count": count, "rows": rows, "more": count > len(rows)}


def _portal_search(user, q: str, limit: int) -> list[PortalHit]:
    """Catalog items `user` may order whose name or description matches, for the portal's search box."""
    from requests_app.selectors import catalog_search

    return [
        PortalHit(kind="item", title=item.name, url=reverse("portal:catalog-item", kwargs={"item_id": item.id}),
                  snippet=item.description[:160], meta=item.category.name
                  + (f" · usually {item.expected_delivery}" if item.expected_delivery else ""))
        for item in catalog_search(user, q)[:limit]
    ]


def _popular(request) -> dict | None:
    """The home page's "Popular requests": what was ordered most in 90 days, of what the person may order."""
    from requests_app.selectors import catalog_popular

    items = catalog_popular(request.user)
    return {"items": items} if items else None


def _find(user, number: str):
    """The request `number` names if `user` may open it on the agent page (agents only)."""
    from requests_app.selectors import requests_for

    if not is_staff_role(user):
        return None
    return requests_for(user).filter(number=(number or "").strip().upper()).first()


def _get(number: str):
    """The request `number` names, whoever asks (the email channel's lookup; no permission check)."""
    from requests_app.models import ServiceRequest

    return (ServiceRequest.objects.select_related("requester", "item")
            .filter(number=(number or "").strip().upper()).first())


def _brief(req) -> TicketBrief:
    from requests_app.states import FINAL, Status

    return TicketBrief(
        kind="request", number=req.number, title=req.title, description=req.description, status=req.status,
        status_label=req.get_status_display(), url=reverse("agent:request", kwargs={"number": req.number}),
        solved=req.status in (Status.FULFILLED, Status.CLOSED), can_reply=req.status not in FINAL,
    )


def _accepts_reply(req) -> bool:
    from requests_app.states import FINAL

    return req.status not in FINAL


def _reply(*, ticket, author, body: str, files=(), data=None, internal: bool = False):
    """A public reply from another app or by mail: the same service as the reply box (mail to the other side
    and the watchers; a requester's or watcher's reply reopens a recently fulfilled request). `internal`: an
    internal note instead (an agent's answer by mail to agent-only mail), mailed to nobody."""
    from requests_app.services import request_comment_add

    return request_comment_add(request=ticket, author=author, body=body, internal=internal, files=files,
                               data=data)


def _create_from_mail(*, intake):
    from requests_app.services import request_from_mail

    return request_from_mail(item_id=intake.catalog_item_id, requester=intake.requester, title=intake.title,
                             body=intake.body, files=intake.files, data=intake.data)


def register() -> None:
    from requests_app import retention

    retention.register()  # retention: what goes and what stays (docs/retention.md)
    from django.db.models.signals import post_delete

    from requests_app.api import (
        ApprovalViewSet,
        CatalogItemViewSet,
        FulfilmentCallbackView,
        ServiceRequestViewSet,
    )
    from requests_app.models import ServiceRequest
    from requests_app.sla import RequestSlaAdapter, clocks_drop_with_request
    from requests_app.states import Status

    registry.api_route("catalog/items", CatalogItemViewSet, basename="catalog-item")
    registry.api_route("requests", ServiceRequestViewSet, basename="request")
    registry.api_path("requests/fulfilment/callback/<str:token>/", FulfilmentCallbackView.as_view(),
                      name="fulfilment-callback")
    registry.api_route("approvals", ApprovalViewSet, basename="approval")
    registry.portal_panel(PortalPanel(key="approvals", template="requests_app/_approvals_panel.html",
                                      context=_approvals_panel, order=10))
    registry.ticket_source(TicketSource("requests", "Requests", _mine, order=20))
    registry.ticket_kind(TicketKind("request", "Service request", find=_find, brief=_brief, reply=_reply,
                                    prefix="REQ", get=_get, create_from_mail=_create_from_mail,
                                    accepts_reply=_accepts_reply))
    registry.workspace_section(WorkspaceSection("requests", "Requests", _requests_nav, order=20))
    registry.search_provider(SearchProvider("requests", "Requests", _search, _find_number, order=20))
    registry.portal_tile(PortalTile("catalog", "Request something", "Order software, access or equipment",
                                    "portal:catalog", icon="i-sparkle", order=20))
    registry.portal_panel(PortalPanel("popular", "requests_app/_popular.html", _popular, order=20))
    registry.portal_search(PortalSearchProvider("catalog", "Catalog items", _portal_search, order=20))
    registry.demo_step(DemoStep("requests_app", _seed, after=("sla",)))
    from requests_app.states import OPEN
    from servicedesk.metrics import ticket_metrics

    registry.metric(ticket_metrics("request", ServiceRequest, OPEN))
    post_delete.connect(clocks_drop_with_request, sender=ServiceRequest, dispatch_uid="requests_app.sla.clocks_drop")
    # SLA policies may apply to service requests; their pause statuses name these.
    sla_ticket_type("request", "Service request", adapter=RequestSlaAdapter(), statuses=Status.values)
