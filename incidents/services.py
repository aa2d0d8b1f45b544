"""Every write to an incident goes through here (lifecycle transitions arrive with issue #3)."""

from django.db import transaction

from incidents.models import Channel, Incident
from incidents.states import Status
from servicedesk.errors import InvalidInput
from servicedesk.models import TimelineEntry
from servicedesk.notifications import email_enqueue, webhooks_emit
from servicedesk.numbering import number_next
from servicedesk.roles import is_staff_role
from servicedesk.services import audit_record, priority_for, timeline_add


def incident_payload(incident: Incident) -> dict:
    """What webhooks and emails say about an incident: plain values only."""
    return {
        "number": incident.number,
        "title": incident.title,
        "status": incident.status,
        "priority": incident.priority,
        "impact": incident.impact,
        "urgency": incident.urgency,
        "requester": incident.requester.username,
        "service": incident.service.name if incident.service_id else None,
        "assignment_group": incident.assignment_group.name if incident.assignment_group_id else None,
        "assignee": incident.assignee.username if incident.assignee_id else None,
        "created_at": incident.created_at,
        "updated_at": incident.updated_at,
    }


@transaction.atomic
def incident_create(
    *,
    title: str,
    requester,
    created_by,
    description: str = "",
    impact: int = 3,
    urgency: int = 3,
    channel: str = Channel.PORTAL,
    service=None,
    configuration_item=None,
    category=None,
    assignment_group=None,
) -> Incident:
    title = (title or "").strip()
    if not title:
        raise InvalidInput("title: say in a few words what is wrong", field="title")
    if channel not in Channel.values:
        raise InvalidInput(f"channel must be one of {', '.join(Channel.values)}", field="channel")
    incident = Incident.objects.create(
        number=number_next(Incident.NUMBER_PREFIX),
        title=title[:200],
        description=description,
        requester=requester,
        impact=impact,
        urgency=urgency,
        priority=priority_for(impact=impact, urgency=urgency),
        channel=channel,
        service=service,
        configuration_item=configuration_item,
        category=category,
        assignment_group=assignment_group or (service.owner_team if service is not None else None),
        status=Status.NEW,
    )
    timeline_add(
        ticket=incident,
        kind=TimelineEntry.Kind.SYSTEM,
        author=created_by,
        body=f"Incident raised through {incident.get_channel_display().lower()}",
        data={"event": "created", "priority": incident.priority},
    )
    audit_record(actor=created_by, action="incident.created", obj=incident,
                 changes={"priority": incident.priority, "status": incident.status})
    payload = incident_payload(incident)
    email_enqueue(template="incident_created", to=[requester.email], context={"incident": payload})
    webhooks_emit("incident.created", payload)
    return incident


@transaction.atomic
def incident_comment_add(*, incident: Incident, author, body: str, internal: bool = False) -> TimelineEntry:
    """A public reply or an internal note. Only agents may write internal notes."""
    if internal and not is_staff_role(author):
        raise InvalidInput("internal: only agents can write internal notes", field="internal")
    locked = Incident.objects.select_for_update().get(id=incident.id)
    entry = timeline_add(
        ticket=locked,
        kind=TimelineEntry.Kind.NOTE if internal else TimelineEntry.Kind.COMMENT,
        author=author,
        body=body,
    )
    fields = ["version", "updated_at"]
    if not internal and is_staff_role(author) and locked.first_responded_at is None and author != locked.requester:
        locked.first_responded_at = entry.created_at
        fields.append("first_responded_at")
    locked.version += 1
    locked.save(update_fields=fields)
    incident.version, incident.updated_at = locked.version, locked.updated_at
    if not internal:
        payload = incident_payload(locked)
        comment = {"author": author.get_full_name() or author.username, "body": body}
        if author == locked.requester:
            to = [locked.assignee.email] if locked.assignee_id else []
        else:
            to = [locked.requester.email]
        email_enqueue(template="incident_comment", to=to, context={"incident": payload, "comment": comment})
        webhooks_emit("incident.commented", {**payload, "comment": comment})
    return entry
