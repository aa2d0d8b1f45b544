"""What an incident tells people and systems: the webhook payload, emails to the requester, the assignee
or the team, and the alert for an urgent incident nobody owns."""

from incidents.models import Incident
from incidents.states import OPEN
from servicedesk.notifications import email_enqueue, team_addresses

URGENT_PRIORITIES = (1, 2)


# --- payloads and notifications -------------------------------------------------------------------


def incident_payload(incident: Incident) -> dict:
    """What webhooks and emails say about an incident: plain values only."""
    return {
        "number": incident.number,
        "title": incident.title,
        "status": incident.status,
        "status_label": incident.get_status_display(),
        "requester_status": incident.requester_status,  # the portal's words ("Waiting for your reply")
        "hold_reason": incident.hold_reason,
        "priority": incident.priority,
        "impact": incident.impact,
        "urgency": incident.urgency,
        "major": incident.major,
        "requester": incident.requester.username,
        "requester_name": incident.requester.get_full_name() or incident.requester.username,
        "service": incident.service.name if incident.service_id else None,
        "assignment_group": incident.assignment_group.name if incident.assignment_group_id else None,
        "assignee": incident.assignee.username if incident.assignee_id else None,
        "resolution_code": incident.resolution_code,
        "resolution_notes": incident.resolution_notes,
        "created_at": incident.created_at,
        "updated_at": incident.updated_at,
    }


def notify_people(incident: Incident, *, to: list[str], headline: str, details: str = "", audience: str,
                  internal: bool | None = None) -> None:
    """One email about a change, worded for the requester (portal link) or for agents (workspace link). Mail
    to agents is internal by default (servicedesk.notifications.email_enqueue): a reply to it stays on the
    desk's side. `internal=False` for agents' mail that carries the requester's words ("<requester> replied"):
    an agent answering it by mail answers the requester."""
    email_enqueue(
        template="incident_update",
        to=to,
        context={"incident": incident_payload(incident), "headline": headline, "details": details,
                 "audience": audience},
        thread=incident,
        internal=audience != "requester" if internal is None else internal,
    )


def alert_team_if_urgent_and_unassigned(incident: Incident) -> None:
    if incident.priority in URGENT_PRIORITIES and incident.assignee_id is None and incident.status in OPEN:
        notify_people(incident, to=team_addresses(incident.assignment_group), audience="agent",
                headline=f"Unassigned P{incident.priority}: {incident.title}",
                details="Nobody is assigned yet. Please pick it up.")
