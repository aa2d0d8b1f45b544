"""Incidents and their SLA clocks: the facts every incident service hands to sla.clocks, and the adapter
through which SLA escalations read and change an incident (always through incidents' own services).

Registered with sla.registry in incidents.plugin. First response: the first public reply by an agent, or the
resolution (which reaches the requester); assigning an incident does not count.
"""

from django.db import transaction
from django.urls import reverse

from incidents.models import Incident
from incidents.states import Status
from servicedesk.models import Profile, TimelineEntry
from servicedesk.services import timeline_add
from sla.clocks import clocks_delete, clocks_sync
from sla.registry import TicketFacts, TicketInfo

TICKET_TYPE = "incident"


def clocks_drop_with_incident(sender, instance, **kwargs) -> None:
    """An erased incident takes its clocks with it (connected to post_delete in incidents.plugin)."""
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


class IncidentSlaAdapter:
    """What SLA escalations ask of an incident (sla.registry.TicketAdapter)."""

    def info(self, ticket_id: int) -> TicketInfo | None:
        return self.infos([ticket_id]).get(ticket_id)

    def infos(self, ticket_ids) -> dict[int, TicketInfo]:
        """Many incidents in one query (SLA reports list pages of breached tickets)."""
        rows = Incident.objects.select_related("assignee", "assignment_group__lead").filter(id__in=list(ticket_ids))
        return {incident.id: self._info(incident) for incident in rows}

    @staticmethod
    def _info(incident: Incident) -> TicketInfo:
        group = incident.assignment_group
        return TicketInfo(
            number=incident.number, title=incident.title, priority=incident.priority,
            url=reverse("agent:incident", kwargs={"number": incident.number}),
            team_id=group.id if group else None, team_name=group.name if group else "",
            assignee_email=incident.assignee.email if incident.assignee_id else "",
            team_lead_email=group.lead.email if group and group.lead_id else "",
        )

    def note(self, ticket_id: int, body: str, data: dict) -> None:
        timeline_add(ticket=Incident(id=ticket_id), kind=TimelineEntry.Kind.SYSTEM, body=body, internal=True,
                     data=data)

    @transaction.atomic
    def resync(self, ticket_id: int, *, reason: str, recount: bool = False) -> None:
        incident = Incident.objects.select_for_update().filter(id=ticket_id).first()
        if incident is not None:
            incident_sla_sync(incident, reason=reason, recount=recount)

    def reassign(self, ticket_id: int, team_id: int, reason: str) -> None:
        from incidents.services import incident_assign
        from servicedesk.models import Team

        incident_assign(incident_id=ticket_id, actor=None, assignment_group=Team.objects.get(id=team_id))

    def raise_priority(self, ticket_id: int, reason: str) -> None:
        from incidents.services import incident_priority_raise

        incident_priority_raise(incident_id=ticket_id, actor=None, reason=reason)
