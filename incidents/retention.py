"""Incidents' part in retention (servicedesk.retention, docs/retention.md): closed and cancelled incidents go
RETENTION_TICKETS_DAYS after `closed_at` (stamped on both), read through incident_closed_idx.

A major incident never loses its children's link, in either direction, through two holds (each a NOT EXISTS in
the batch's query):

- "incident-children": a parent stays while any child incident is still there (deleting it would set the
  children's `parent` to NULL); it goes once its last child has gone (in the run after, or later in the same run
  if it comes after that child in closing order);
- "incident-live-parent": a child stays while its parent is not closed or cancelled, so a major incident still
  being worked (or resolved, able to reopen) keeps every child it lists. Once the parent is closed, its children
  go by their own dates, then the parent."""

from django.db.models import Exists, OuterRef

from incidents.models import Incident
from incidents.states import FINAL
from servicedesk.registry import RetentionHold, TicketRetention, registry


def _due(cutoff):
    return Incident.objects.filter(status__in=FINAL, closed_at__lt=cutoff)


def _keep_parents(kind: str, qs):
    """Through incident_parent_idx."""
    return qs.exclude(Exists(Incident.objects.filter(parent_id=OuterRef("pk"))))


def _keep_children_of_live_parents(kind: str, qs):
    """Through the parent's primary key."""
    return qs.exclude(Exists(Incident.objects.filter(pk=OuterRef("parent_id")).exclude(status__in=FINAL)))


def register() -> None:
    registry.ticket_retention(TicketRetention(kind="incident", model=Incident, due=_due, order=50))
    registry.retention_hold(RetentionHold(key="incident-children", ticket_kinds=("incident",), narrow=_keep_parents))
    registry.retention_hold(RetentionHold(key="incident-live-parent", ticket_kinds=("incident",),
                                          narrow=_keep_children_of_live_parents))
