"""What the service catalog and service requests add to the kernel (servicedesk.registry): their API, the
portal's "My tickets" rows, the SLA ticket type "request" and the demo catalog. Imported once by
RequestsAppConfig.ready(); nothing in the kernel imports this app."""

from django.urls import reverse

from servicedesk.registry import (
    DemoStep,
    NavItem,
    PortalPanel,
    TicketRow,
    TicketSource,
    WorkspaceSection,
    registry,
)
from sla.registry import ticket_type as sla_ticket_type


def _seed(options: dict) -> str:
    from requests_app.demo import seed_approvals, seed_catalog

    return f"{seed_catalog()}; {seed_approvals()}"


def _mine(user, limit: int) -> list[TicketRow]:
    """Requests the person raised, newest change first (one query), linking to their portal pages."""
    from requests_app.selectors import requests_for

    rows = requests_for(user).filter(requester=user).order_by("-updated_at", "-id")[:limit]
    return [
        TicketRow(kind="request", number=r.number, title=r.title, status=r.status,
                  status_label=r.get_status_display(), updated_at=r.updated_at,
                  url=reverse("portal:request", kwargs={"number": r.number}), snippet=r.item.name)
        for r in rows
    ]


def _approvals_nav(request, current: str) -> list[NavItem]:
    """The workspace's approvals inbox, with how many wait for this person (admins: everyone's), no number when
    none does; one query."""
    from requests_app.selectors import approvals_pending_count

    count = approvals_pending_count(request.user)
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


def register() -> None:
    from django.db.models.signals import post_delete

    from requests_app.api import ApprovalViewSet, CatalogItemViewSet, ServiceRequestViewSet
    from requests_app.models import ServiceRequest
    from requests_app.sla import RequestSlaAdapter, clocks_drop_with_request
    from requests_app.states import Status

    registry.api_route("catalog/items", CatalogItemViewSet, basename="catalog-item")
    registry.api_route("requests", ServiceRequestViewSet, basename="request")
    registry.api_route("approvals", ApprovalViewSet, basename="approval")
    registry.workspace_section(WorkspaceSection("approvals", "Requests", _approvals_nav, order=20))
    registry.portal_panel(PortalPanel(key="approvals", template="requests_app/_approvals_panel.html",
                                      context=_approvals_panel, order=10))
    registry.ticket_source(TicketSource("requests", "Requests", _mine, order=20))
    registry.demo_step(DemoStep("requests_app", _seed, after=("sla",)))
    post_delete.connect(clocks_drop_with_request, sender=ServiceRequest, dispatch_uid="requests_app.sla.clocks_drop")
    # SLA policies may apply to service requests; their pause statuses name these.
    sla_ticket_type("request", "Service request", adapter=RequestSlaAdapter(), statuses=Status.values)
