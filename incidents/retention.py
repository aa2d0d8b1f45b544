"""Incidents' part in retention (servicedesk.retention, docs/retention.md): closed and cancelled incidents go
RETENTION_TICKETS_DAYS after `closed_at` (stamped on both), read through incident_closed_idx. A parent keeps while
any child incident is still there, so a major incident never loses its children's link."""

from django.db.models import Exists, OuterRef

from incidents.models import Incident
from incidents.states import Status
from servicedesk.registry import RetentionHold, TicketRetention, registry


def _due(cutoff):
    return Incident.objects.filter(status__in=[Status.CLOSED, Status.CANCELLED], closed_at__lt=cutoff)


def _keep_parents(kind: str, qs):
    return qs.exclude(Exists(Incident.objects.filter(parent_id=OuterRef("pk"))))


def register() -> None:
    registry.ticket_retention(TicketRetention(kind="incident", model=Incident, due=_due, order=50))
    registry.retention_hold(RetentionHold(key="incident-children", ticket_kinds=("incident",), narrow=_keep_parents))
