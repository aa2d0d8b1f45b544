"""What the service catalog and service requests add to the kernel (servicedesk.registry): their API, the
portal's "My tickets" rows, the SLA ticket type "request" and the demo catalog. Imported once by
RequestsAppConfig.ready(); nothing in the kernel imports this app."""

from django.urls import reverse

from servicedesk.registry import (
    DemoStep,
    PortalHit,
    PortalPanel,
    PortalSearchProvider,
    PortalTile,
    TicketRow,
    TicketSource,
    registry,
)
from sla.registry import ticket_type as sla_ticket_type


def _seed(options: dict) -> str:
    from requests_app.demo import seed_catalog

    return seed_catalog()


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


def register() -> None:
    from django.db.models.signals import post_delete

    from requests_app.api import CatalogItemViewSet, ServiceRequestViewSet
    from requests_app.models import ServiceRequest
    from requests_app.sla import RequestSlaAdapter, clocks_drop_with_request
    from requests_app.states import Status

    registry.api_route("catalog/items", CatalogItemViewSet, basename="catalog-item")
    registry.api_route("requests", ServiceRequestViewSet, basename="request")
    registry.ticket_source(TicketSource("requests", "Requests", _mine, order=20))
    registry.portal_tile(PortalTile("catalog", "Request something", "Order software, access or equipment",
                                    "portal:catalog", icon="i-sparkle", order=20))
    registry.portal_panel(PortalPanel("popular", "requests_app/_popular.html", _popular, order=20))
    registry.portal_search(PortalSearchProvider("catalog", "Catalog items", _portal_search, order=20))
    registry.demo_step(DemoStep("requests_app", _seed, after=("sla",)))
    post_delete.connect(clocks_drop_with_request, sender=ServiceRequest, dispatch_uid="requests_app.sla.clocks_drop")
    # SLA policies may apply to service requests; their pause statuses name these.
    sla_ticket_type("request", "Service request", adapter=RequestSlaAdapter(), statuses=Status.values)
