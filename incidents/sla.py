"""Incidents and their SLA clocks: the facts every incident service hands to sla.clocks, and the adapter
through which SLA escalations read and change an incident (always through incidents' own services).

Registered with sla.registry in incidents.plugin. First response: the first public reply by an agent, or the
resolution (which reaches the requester); assigning an incident does not count.
"""

from django.urls import reverse

from incidents.models import Incident
from incidents.states import Status
from servicedesk.models import Profile
from sla.clocks import clocks_delete, clocks_sync
from sla.registry import TicketFacts, TicketModelAdapter

TICKET_TYPE = "incident"


def clocks_drop_with_incident(sender, instance, **kwargs) -> None:
    """An erased incident takes its clocks with it (connected to post_delete in incidents.plugin)."""
    from servicedesk.retention import retiring

    if retiring(TICKET_TYPE):  # retention removed the whole batch's clocks already (sla.retention)
        return
    clocks_delete(TICKET_TYPE, [instance.pk])


def incident_facts(incident: Incident) -> TicketFacts:
    status = f"{incident.status}:{incident.hold_reason}" if incident.hold_reason else incident.status
    label = incident.get_status_display()
    if incident.hold_reason:
        label += f" ({incident.get_hold_reason_display().lower()})"
    requester = incident.requester
    try:  # read with the incident when the caller's query selected requester__profile (the services do)
        organisation_id = requester.profile.organisation_id
    except Profile.DoesNotExist:
        organisation_id = None
    return TicketFacts(
        ticket_type=TICKET_TYPE, ticket_id=incident.id, priority=incident.priority, status=status,
        status_label=label, created_at=incident.created_at, team_id=incident.assignment_group_id,
        service_id=incident.service_id, organisation_id=organisation_id,
        responded=incident.first_responded_at is not None,
        resolved=incident.status in (Status.RESOLVED, Status.CLOSED),
        cancelled=incident.status == Status.CANCELLED,
    )


def incident_sla_sync(incident: Incident, *, now=None, reason: str = "", recount: bool = False) -> None:
    """Move the incident's clocks after a change (inside the service's transaction, the row locked) and keep
    `sla_due_at` for the queues."""
    summary = clocks_sync(incident_facts(incident), now=now, reason=reason, recount=recount)
    if incident.sla_due_at != summary.due_at:
        Incident.objects.filter(id=incident.id).update(sla_due_at=summary.due_at)
        incident.sla_due_at = summary.due_at


class IncidentSlaAdapter(TicketModelAdapter):
    """What SLA escalations ask of an incident (sla.registry.TicketAdapter)."""

    model = Incident

    def url(self, incident) -> str:
        return reverse("agent:incident", kwargs={"number": incident.number})

    def sync(self, incident, *, reason: str, recount: bool) -> None:
        incident_sla_sync(incident, reason=reason, recount=recount)

    def reassign(self, ticket_id: int, team_id: int, reason: str) -> None:
        from incidents.services import incident_assign
        from servicedesk.models import Team

        incident_assign(incident_id=ticket_id, actor=None, assignment_group=Team.objects.get(id=team_id))

    def raise_priority(self, ticket_id: int, reason: str) -> None:
        from incidents.services import incident_priority_raise

        incident_priority_raise(incident_id=ticket_id, actor=None, reason=reason)
