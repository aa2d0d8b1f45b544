"""Every write to an incident goes through here: one function per change, one transaction each.

Each function locks the row, checks the version when the caller sent one, applies the change, bumps the
version, writes a timeline entry and an audit row, and queues notifications on commit. Nothing else
assigns `Incident.status` (the API marks it read-only, admin shows incidents read-only).
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from incidents.impact import impact_for
from incidents.models import Channel, Incident, IncidentSettings, ResolutionCode
from incidents.search import search_refresh
from incidents.services.notify import (
    alert_team_if_urgent_and_unassigned,
    incident_payload,
    notify_people,
)
from incidents.services.routing import pick_assignee, route
from incidents.sla import incident_sla_sync
from incidents.states import FINAL, OPEN, HoldReason, Status, check_transition
from servicedesk.errors import InvalidInput, TransitionNotAllowed
from servicedesk.models import Team, TeamMembership, TimelineEntry
from servicedesk.notifications import email_enqueue, team_addresses, webhooks_emit
from servicedesk.numbering import number_next
from servicedesk.registry import registry
from servicedesk.roles import is_staff_role
from servicedesk.services import attachment_add, audit_record, priority_for, timeline_add, timeline_changes
from servicedesk.tickets import ticket_check_version, ticket_lock, ticket_save
from servicedesk.watchers import is_watcher, watchers_mail_reply

# --- helpers --------------------------------------------------------------------------------------


def _lock(incident_id: int) -> Incident:
    return ticket_lock(Incident, incident_id, "requester__profile", "assignee", "assignment_group", "service")


# --- create ---------------------------------------------------------------------------------------


@transaction.atomic
def incident_create(
    *,
    title: str,
    requester,
    created_by,
    description: str = "",
    impact: int | None = None,
    urgency: int = 3,
    channel: str = Channel.PORTAL,
    service=None,
    configuration_item=None,
    category=None,
    assignment_group=None,
    assignee=None,
    major: bool = False,
    now=None,
    data: dict | None = None,
) -> Incident:
    """Raise an incident. `data` is recorded on its "created" timeline entry (e.g. the mail it came from)."""
    title = (title or "").strip()
    if not title:
        raise InvalidInput("title: say in a few words what is wrong", field="title")
    if channel not in Channel.values:
        raise InvalidInput(f"channel must be one of {', '.join(Channel.values)}", field="channel")
    impact = impact_for(creator=created_by, service=service, impact=impact)  # requesters may not set it
    now = now or timezone.now()
    routed = assignment_group is None
    group = assignment_group or route(title=title, description=description, category=category, service=service,
                                      configuration_item=configuration_item)
    if assignee is not None:
        _check_member(assignee, group)
    else:
        assignee = pick_assignee(group, now=now)
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
        assignment_group=group,
        assignee=assignee,
        major=major,
        status=Status.NEW,
        created_at=now,
        updated_by=created_by if created_by is not None and created_by.is_authenticated else None,
    )
    timeline_add(
        ticket=incident,
        kind=TimelineEntry.Kind.SYSTEM,
        author=created_by,
        body=f"Incident raised through {incident.get_channel_display().lower()}",
        data={**(data or {}), "event": "created", "priority": incident.priority,
              "routed_to": group.name if group and routed else None,
              "auto_assigned": assignee.username if assignee else None},
    )
    audit_record(actor=created_by, action="incident.created", obj=incident,
                 changes={"priority": incident.priority, "status": incident.status})
    incident_sla_sync(incident, now=now, reason="Incident raised")
    search_refresh([incident.id])
    email_enqueue(template="incident_created", to=[requester.email], context={"incident": incident_payload(incident)},
                  thread=incident)
    if assignee is not None and assignee != created_by:
        notify_people(incident, to=[assignee.email], audience="agent", headline=f"Assigned to you: {incident.title}")
    alert_team_if_urgent_and_unassigned(incident)
    webhooks_emit("incident.created", incident_payload(incident))
    return incident


def _check_member(user, team: Team | None) -> None:
    if user is None:
        return
    if not is_staff_role(user):
        raise InvalidInput(f"assignee: {user.username} is not an agent", field="assignee")
    if team is not None and not TeamMembership.objects.filter(team=team, user=user).exists():
        raise InvalidInput(f"assignee: {user.username} is not a member of {team.name}", field="assignee")


# --- update ---------------------------------------------------------------------------------------

EDITABLE = ("title", "description", "impact", "urgency", "service", "configuration_item", "category", "major",
            "parent")


@transaction.atomic
def incident_update(*, incident_id: int, actor, version: int | None = None, **changes) -> Incident:
    """Change descriptive fields. Priority follows impact x urgency; a raised priority re-notifies."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"{sorted(unknown)[0]}: not editable here", field=sorted(unknown)[0])
    incident = _lock(incident_id)
    ticket_check_version(incident, version)
    if incident.status in FINAL:
        raise TransitionNotAllowed(f"{incident.number} is {incident.get_status_display().lower()}: it cannot change")
    if "title" in changes and not (changes["title"] or "").strip():
        raise InvalidInput("title: cannot be empty", field="title")
    if "parent" in changes and changes["parent"] is not None:
        _check_parent(incident, changes["parent"])
    old = {name: getattr(incident, name) for name in changes}
    old["priority"] = incident.priority
    for name, value in changes.items():
        setattr(incident, name, value)
    fields = [name for name in changes if old[name] != changes[name]]
    if {"impact", "urgency"} & set(fields):
        incident.priority = priority_for(impact=incident.impact, urgency=incident.urgency)
        if incident.priority != old["priority"]:
            fields.append("priority")
    if not fields:
        return incident  # nothing changed: no version bump, no timeline entry
    ticket_save(incident, actor, fields)
    diff = {name: (_plain(old[name]), _plain(getattr(incident, name))) for name in fields}
    # Field changes are the desk's business (priorities, routing): internal, never shown on the portal.
    timeline_changes(ticket=incident, author=actor, changes=diff, internal=True)
    audit_record(actor=actor, action="incident.updated", obj=incident,
                 changes={k: {"old": a, "new": b} for k, (a, b) in diff.items()})
    if {"title", "description"} & set(fields):
        search_refresh([incident.id])
    if {"priority", "service"} & set(fields):
        incident_sla_sync(incident, reason=", ".join(
            f"{name.capitalize()} {_plain(old[name]) or 'none'} → {_plain(getattr(incident, name)) or 'none'}"
            for name in ("priority", "service") if name in fields))
    if incident.priority < old["priority"]:
        to = [incident.assignee.email] if incident.assignee_id else team_addresses(incident.assignment_group)
        notify_people(incident, to=to, audience="agent", details=f"It was P{old['priority']}.",
                headline=f"Priority raised to P{incident.priority}: {incident.title}")
        webhooks_emit("incident.escalated", {**incident_payload(incident), "old_priority": old["priority"]})
    if "major" in fields and incident.major:
        timeline_add(ticket=incident, kind=TimelineEntry.Kind.SYSTEM, author=actor, body="Declared a major incident")
        webhooks_emit("incident.major", incident_payload(incident))
    return incident


def incident_priority_raise(*, incident_id: int, actor, reason: str = "") -> Incident:
    """Raise the priority by one level (an SLA escalation step): lower the urgency, then the impact, by as
    little as the priority matrix needs. Goes through incident_update, so it is recorded and notified."""
    incident = Incident.objects.only("impact", "urgency", "priority", "status").get(id=incident_id)
    if incident.priority <= 1:
        return incident
    for impact, urgency in sorted(
        ((i, u) for i in range(1, incident.impact + 1) for u in range(1, incident.urgency + 1)),
        key=lambda pair: (-(pair[0] + pair[1]), -pair[0]),  # the smallest move first, urgency before impact
    ):
        if priority_for(impact=impact, urgency=urgency) < incident.priority:
            return incident_update(incident_id=incident_id, actor=actor, impact=impact, urgency=urgency)
    raise TransitionNotAllowed(f"priority: no impact and urgency give a priority above P{incident.priority}"
                               + (f" ({reason})" if reason else ""), field="priority")


def _check_parent(incident: Incident, parent: Incident) -> None:
    if parent.id == incident.id:
        raise InvalidInput("parent: an incident cannot be its own parent", field="parent")
    node, seen = parent, set()
    while node is not None and node.id not in seen:  # no cycles
        if node.parent_id == incident.id:
            raise InvalidInput(f"parent: {parent.number} is already a child of {incident.number}", field="parent")
        seen.add(node.id)
        node = node.parent
    if parent.status in FINAL:
        raise InvalidInput(f"parent: {parent.number} is {parent.get_status_display().lower()}", field="parent")


def _plain(value):
    if hasattr(value, "pk"):
        return str(value)
    return value


# --- assignment -----------------------------------------------------------------------------------

_UNSET = object()


@transaction.atomic
def incident_assign(*, incident_id: int, actor, assignment_group=_UNSET, assignee=_UNSET,
                    version: int | None = None) -> Incident:
    """Set the group and/or the assignee. Assigning a person to a new incident starts it."""
    incident = _lock(incident_id)
    ticket_check_version(incident, version)
    if incident.status not in OPEN:
        raise TransitionNotAllowed(
            f"{incident.number} is {incident.get_status_display().lower()}: reopen it before assigning", field="status"
        )
    old_group, old_assignee, old_status = incident.assignment_group, incident.assignee, incident.status
    group = old_group if assignment_group is _UNSET else assignment_group
    person = old_assignee if assignee is _UNSET else assignee
    if assignment_group is not _UNSET and assignee is _UNSET and person is not None and group is not None:
        if not TeamMembership.objects.filter(team=group, user=person).exists():
            person = None  # moving to another team drops an assignee who is not in it
    _check_member(person, group)
    incident.assignment_group, incident.assignee = group, person
    fields = ["assignment_group", "assignee"]
    if incident.status == Status.NEW and person is not None:
        incident.status = Status.IN_PROGRESS
        fields.append("status")
    if (group, person, incident.status) == (old_group, old_assignee, old_status):
        return incident  # a retried call changes nothing
    ticket_save(incident, actor, fields)
    timeline_changes(ticket=incident, author=actor, internal=True, changes={
        "assignment_group": (str(old_group) if old_group else None, str(group) if group else None),
        "assignee": (old_assignee.username if old_assignee else None, person.username if person else None),
        "status": (old_status, incident.status),
    })
    audit_record(actor=actor, action="incident.assigned", obj=incident,
                 changes={"group": str(group) if group else None, "assignee": person.username if person else None})
    if group != old_group or incident.status != old_status:
        incident_sla_sync(incident, reason=f"Assigned to {group}" if group != old_group and group else
                          "Work started" if incident.status != old_status else "Group removed")
    if person is not None and person != old_assignee and person != actor:
        notify_people(incident, to=[person.email], audience="agent", headline=f"Assigned to you: {incident.title}",
                details=f"Assigned by {actor.get_full_name() or actor.username}." if actor else "")
    if group != old_group and person is None:
        alert_team_if_urgent_and_unassigned(incident)
    webhooks_emit("incident.assigned", incident_payload(incident))
    return incident


# --- lifecycle ------------------------------------------------------------------------------------


@transaction.atomic
def incident_transition(
    *,
    incident_id: int,
    to: str,
    actor,
    version: int | None = None,
    hold_reason: str = "",
    resolution_code: str = "",
    resolution_notes: str = "",
    reason: str = "",
    now=None,
    notify_requester: bool = True,
    expect: tuple[str, str] | None = None,
    force: bool = False,
) -> Incident:
    """Move an incident along the lifecycle (incidents.states.ALLOWED). Illegal moves raise
    TransitionNotAllowed; missing data raises InvalidInput naming the field. `expect` = (status, message)
    narrows a move to one starting status (resume: from on hold; reopen: from resolved), checked under the lock.
    Resolving is refused while another app objects (servicedesk.registry.ResolveCheck: e.g. its alerts still
    fire), unless `force`."""
    now = now or timezone.now()
    if to not in Status.values:
        raise InvalidInput(f"status: unknown status {to!r}", field="status")
    incident = _lock(incident_id)
    ticket_check_version(incident, version)
    if expect is not None and incident.status != expect[0]:
        raise TransitionNotAllowed(f"{expect[1]}; this one is {incident.get_status_display().lower()}",
                                   field="status")
    old_status, old_hold = incident.status, incident.hold_reason
    if old_status == to and (to != Status.ON_HOLD or not hold_reason or hold_reason == old_hold):
        return incident  # a retried call changes nothing
    if old_status == Status.ON_HOLD and to == Status.ON_HOLD:
        pass  # changing the hold reason is allowed while on hold
    else:
        check_transition(old_status, to)
    fields = ["status", "hold_reason"]
    incident.status = to
    incident.hold_reason = ""
    event = {Status.IN_PROGRESS: "started", Status.ON_HOLD: "held", Status.RESOLVED: "resolved",
             Status.CLOSED: "closed", Status.CANCELLED: "cancelled"}[to]

    if to == Status.ON_HOLD:
        if hold_reason not in HoldReason.values:
            raise InvalidInput(f"hold_reason: give one of {', '.join(HoldReason.values)}", field="hold_reason")
        incident.hold_reason = hold_reason
    elif to == Status.IN_PROGRESS and old_status == Status.ON_HOLD:
        event = "resumed"
    elif to == Status.IN_PROGRESS and old_status == Status.RESOLVED:
        if not reason.strip():
            raise InvalidInput("reason: say why the incident is reopened", field="reason")
        event = "reopened"
        incident.reopen_count += 1
        incident.resolved_at = None
        incident.resolution_code = ""
        incident.resolution_notes = ""
        fields += ["reopen_count", "resolved_at", "resolution_code", "resolution_notes"]
    elif to == Status.RESOLVED:
        codes = set(ResolutionCode.objects.filter(active=True).values_list("code", flat=True))
        errors = []
        if resolution_code not in codes:
            errors.append(("resolution_code", f"resolution_code: give one of {', '.join(sorted(codes))}"))
        if not resolution_notes.strip():
            errors.append(("resolution_notes", "resolution_notes: say what was done to resolve it"))
        if errors:
            raise InvalidInput("; ".join(m for _, m in errors), field=errors[0][0])
        objections = [] if force else registry.resolve_objections("incident", incident)
        if objections:
            raise TransitionNotAllowed(f"{' '.join(objections)} Resolve anyway with force: true.", field="force")
        incident.resolution_code, incident.resolution_notes, incident.resolved_at = (
            resolution_code, resolution_notes.strip(), now)
        fields += ["resolution_code", "resolution_notes", "resolved_at"]
        if old_status == Status.NEW and not incident.reopen_count:
            incident.first_contact = True  # resolved at the first contact: no one had taken it on
            fields.append("first_contact")
    elif to in FINAL:
        incident.closed_at = now  # when it left the books, closed or cancelled (reports count it that day)
        fields.append("closed_at")
    ticket_save(incident, actor, fields)

    label = Status(to).label
    if to == Status.ON_HOLD:
        label += f" ({incident.get_hold_reason_display()})"
    body = f"{Status(old_status).label} → {label}"
    if reason.strip():
        body += f": {reason.strip()}"
    if to == Status.RESOLVED:
        code_label = ResolutionCode.objects.filter(code=incident.resolution_code).values_list("label", flat=True).first()
        body += f" — {code_label or incident.resolution_code}: {incident.resolution_notes}"
    timeline_add(ticket=incident, kind=TimelineEntry.Kind.SYSTEM, author=actor, body=body,
                 data={"event": event, "old": old_status, "new": to, "hold_reason": incident.hold_reason,
                       "reason": reason.strip()})
    incident_sla_sync(incident, now=now, reason=body)
    audit_record(actor=actor, action=f"incident.{event}", obj=incident,
                 changes={"status": {"old": old_status, "new": to}, "reason": reason.strip()})

    requester_email = [incident.requester.email]
    if to == Status.ON_HOLD and notify_requester:
        details = ("We need something from you: please reply on the ticket."
                   if incident.hold_reason == HoldReason.AWAITING_CALLER else reason.strip())
        notify_people(incident, to=requester_email, audience="requester",
                headline=f"On hold ({incident.get_hold_reason_display().lower()})", details=details)
    elif to == Status.RESOLVED and notify_requester:
        notify_people(incident, to=requester_email, audience="requester", headline="Resolved",
                details=incident.resolution_notes + "\n\nIf it is not fixed, reply and we reopen it.")
    elif event == "reopened" and incident.assignee_id and incident.assignee != actor:
        notify_people(incident, to=[incident.assignee.email], audience="agent", headline="Reopened",
                details=reason.strip())
    webhooks_emit(f"incident.{event}", incident_payload(incident))

    if to == Status.RESOLVED:
        _resolve_children(incident, actor=actor, now=now)
    return incident


def _resolve_children(parent: Incident, *, actor, now) -> None:
    """Children follow their parent: each open child is resolved with the parent's resolution."""
    for child_id, status in parent.children.filter(status__in=OPEN).values_list("id", "status"):
        if status == Status.ON_HOLD:
            incident_transition(incident_id=child_id, to=Status.IN_PROGRESS, actor=actor, now=now,
                                reason=f"Parent {parent.number} resolved")
        incident_transition(
            incident_id=child_id, to=Status.RESOLVED, actor=actor, now=now, force=True,
            resolution_code=parent.resolution_code,
            resolution_notes=f"Resolved with {parent.number}: {parent.resolution_notes}",
        )


def incident_hold(*, incident_id, actor, hold_reason, reason="", version=None):
    return incident_transition(incident_id=incident_id, to=Status.ON_HOLD, actor=actor, hold_reason=hold_reason,
                               reason=reason, version=version)


def incident_resume(*, incident_id, actor, reason="", version=None):
    return incident_transition(incident_id=incident_id, to=Status.IN_PROGRESS, actor=actor, reason=reason,
                               version=version, expect=(Status.ON_HOLD, "only an incident on hold can be resumed"))


def incident_resolve(*, incident_id, actor, resolution_code, resolution_notes, version=None, now=None,
                     force=False):
    return incident_transition(incident_id=incident_id, to=Status.RESOLVED, actor=actor, version=version,
                               resolution_code=resolution_code, resolution_notes=resolution_notes, now=now,
                               force=force)


def incident_reopen(*, incident_id, actor, reason, version=None):
    return incident_transition(incident_id=incident_id, to=Status.IN_PROGRESS, actor=actor, reason=reason,
                               version=version, expect=(Status.RESOLVED, "only a resolved incident can be reopened"))


def incident_close(*, incident_id, actor, version=None, now=None):
    return incident_transition(incident_id=incident_id, to=Status.CLOSED, actor=actor, version=version, now=now)


def incident_cancel(*, incident_id, actor, reason="", version=None):
    return incident_transition(incident_id=incident_id, to=Status.CANCELLED, actor=actor, reason=reason,
                               version=version)


# --- conversation ---------------------------------------------------------------------------------


@transaction.atomic
def incident_comment_add(*, incident: Incident, author, body: str, internal: bool = False, files=(),
                         data: dict | None = None) -> TimelineEntry:
    """A public reply or an internal note (agents only), with attachments (`files`: on the entry, internal
    with a note) and `data` merged into the entry's data (the email channel records the mail). A reply from
    the requester or a watcher who is not an agent reopens a resolved incident and resumes one on hold
    awaiting the caller. A public reply is mailed to the requester and the watchers (an agent's), or to the
    assignee (else the team), the watchers and the requester (a requester's or watcher's), never to its
    author; internal notes reach nobody outside the desk."""
    if internal and not is_staff_role(author):
        raise InvalidInput("internal: only agents can write internal notes", field="internal")
    body = (body or "").strip()
    if not body and files:
        body = "Attached " + ", ".join(upload.name.rsplit("/", 1)[-1] for upload in files)
    locked = _lock(incident.id)
    if locked.status in FINAL and not internal:
        raise TransitionNotAllowed(
            f"{locked.number} is {locked.get_status_display().lower()}: raise a new incident instead", field="status"
        )
    entry = timeline_add(
        ticket=locked,
        kind=TimelineEntry.Kind.NOTE if internal else TimelineEntry.Kind.COMMENT,
        author=author,
        body=body,
        data=data,
    )
    for upload in files:
        attachment_add(ticket=locked, upload=upload, by=author, entry=entry, internal=internal)
    fields = []
    from_requester = author == locked.requester
    # The caller's side: the requester, or a watcher who is not an agent (a colleague answering by mail).
    from_caller = from_requester or (not is_staff_role(author) and is_watcher(locked, author))
    if not internal and not from_caller and is_staff_role(author) and locked.first_responded_at is None:
        locked.first_responded_at = entry.created_at
        fields.append("first_responded_at")
    ticket_save(locked, author, fields)
    if "first_responded_at" in fields:
        incident_sla_sync(locked, now=entry.created_at, reason="First public reply")
    search_refresh([locked.id])
    if from_caller and not internal:
        reason = "The requester replied" if from_requester else "A watcher replied"
        if locked.status == Status.RESOLVED:
            locked = incident_transition(incident_id=locked.id, to=Status.IN_PROGRESS, actor=author, reason=reason)
        elif locked.status == Status.ON_HOLD and locked.hold_reason == HoldReason.AWAITING_CALLER:
            locked = incident_transition(incident_id=locked.id, to=Status.IN_PROGRESS, actor=author, reason=reason)
    incident.version, incident.updated_at, incident.status = locked.version, locked.updated_at, locked.status
    if not internal:
        payload = incident_payload(locked)
        comment = {"author": author.get_full_name() or author.username, "body": body}
        mailed: list[str] = [author.email] if author.email else []
        if from_caller:
            to = [locked.assignee.email] if locked.assignee_id else team_addresses(locked.assignment_group)
            to = [address for address in to if address and address not in mailed]
            # Public mail: the agent's answer to it by mail is a public reply the requester gets.
            notify_people(locked, to=to, audience="agent", headline=f"{comment['author']} replied", details=body,
                          internal=False)
            mailed += to
        if not from_requester and locked.requester.email and locked.requester.email not in mailed:
            email_enqueue(template="incident_comment", to=[locked.requester.email],
                          context={"incident": payload, "comment": comment}, thread=locked)
            mailed.append(locked.requester.email)
        watchers_mail_reply(locked, author=author, template="incident_comment", exclude=mailed,
                            context={"incident": payload, "comment": comment})
        webhooks_emit("incident.commented", {**payload, "comment": comment})
    return entry


@transaction.atomic
def incident_system_note(*, incident_id: int, body: str, data: dict | None = None, actor=None) -> TimelineEntry:
    """An internal system line on the timeline from another part of the desk (an alert fired again, cleared,
    joined...): no status change, no mail, the requester never sees it. The version is not bumped: an agent's
    open edit form stays valid while monitoring reports on the incident."""
    # The timeline needs only the ticket's type and id: no need to read the row (monitoring writes many).
    return timeline_add(ticket=Incident(pk=incident_id), kind=TimelineEntry.Kind.SYSTEM, author=actor, body=body,
                        internal=True, data=data or {})


# --- sweeps ---------------------------------------------------------------------------------------


def incidents_auto_close(*, now=None, batch: int = 500) -> int:
    """Close resolved incidents older than the configured days. Touches only what is due (index on
    status, resolved_at); each row is claimed with SKIP LOCKED so several workers never close one twice."""
    days = IncidentSettings.current().auto_close_days
    if days <= 0:
        return 0
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    closed = 0
    due = list(
        Incident.objects.filter(status=Status.RESOLVED, resolved_at__lte=cutoff)
        .order_by("resolved_at").values_list("id", flat=True)[:batch]
    )
    for incident_id in due:
        with transaction.atomic():
            claimed = (
                Incident.objects.select_for_update(skip_locked=True)
                .filter(id=incident_id, status=Status.RESOLVED, resolved_at__lte=cutoff)
                .exists()
            )
            if not claimed:
                continue
            incident_transition(incident_id=incident_id, to=Status.CLOSED, actor=None, now=now,
                                reason=f"Closed automatically {days} days after resolution")
            closed += 1
    return closed
