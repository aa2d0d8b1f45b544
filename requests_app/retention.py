"""Service requests' part in retention (servicedesk.retention): closed and cancelled requests go
RETENTION_TICKETS_DAYS after `closed_at`, read through request_closed_idx; their approvals and fulfilment run go
with them (foreign keys that cascade)."""

from requests_app.models import ServiceRequest
from requests_app.states import Status
from servicedesk.registry import TicketRetention, registry


def _due(cutoff):
    return ServiceRequest.objects.filter(status__in=[Status.CLOSED, Status.CANCELLED], closed_at__lt=cutoff)


def register() -> None:
    registry.ticket_retention(TicketRetention(kind="request", model=ServiceRequest, due=_due, order=50))
