"""Every write to a service request goes through here: one function per change, one transaction each.

Each function locks the row, checks the version when the caller sent one, checks the move against
requests_app.states, bumps the version, writes a timeline entry and an audit row, moves the SLA clocks and
queues mail through the outbox (sent on commit). Nothing else assigns `ServiceRequest.status`.
"""

from django.db import transaction
from django.utils import timezone

from requests_app.approvals import approvals_cancel, approvals_open
from requests_app.forms_engine import validate_answers
from requests_app.models import CatalogItem, FulfilmentRun, ServiceRequest
from requests_app.selectors import catalog_items_for
from requests_app.sla import request_sla_sync
from requests_app.states import FINAL, Status, check_transition
from servicedesk.errors import InvalidInput, TransitionNotAllowed
from servicedesk.models import TeamMembership, TimelineEntry
from servicedesk.notifications import email_enqueue, team_addresses
from servicedesk.numbering import number_next
from servicedesk.roles import is_staff_role
from servicedesk.services import attachment_add, audit_record, timeline_add, timeline_changes
from servicedesk.tickets import ticket_check_version, ticket_lock, ticket_save
from servicedesk.watchers import is_watcher, watchers_mail_reply

DEFAULT_PRIORITY = 4
# Until this many things are done, the requester (or an agent) may still cancel.
CANCELLABLE = frozenset({Status.SUBMITTED, Status.PENDING_APPROVAL, Status.APPROVED, Status.IN_FULFILMENT,
                         Status.FAILED})


def _lock(request_id: int) -> ServiceRequest:
    return ticket_lock(ServiceRequest, request_id, "requester__profile", "item", "assignment_group", "assignee")



def request_payload(request: ServiceRequest) -> dict:
    """What mail templates read of a request (plain values: it travels through the outbox as JSON)."""
    requester = request.requester
    return {
        "number": request.number,
        "title": request.title,
        "item": request.item.name,
        "status": request.status,
        "status_label": request.get_status_display(),
        "expected_delivery": request.item.expected_delivery,
        "requester_name": requester.get_full_name() or requester.username,
        "team": request.assignment_group.name if request.assignment_group_id else "",
    }


def _move(request: ServiceRequest, to: str, *, actor, body: str, now, extra: dict | None = None,
          internal: bool = False) -> None:
    """Change the status (checked), save, and record it on the timeline and in the audit log."""
    old = request.status
    check_transition(old, to)
    request.status = to
    fields = ["status"]
    for name, value in (extra or {}).items():
        setattr(request, name, value)
        fields.append(name)
    ticket_save(request, actor, fields)
    timeline_add(ticket=request, kind=TimelineEntry.Kind.SYSTEM, author=actor, body=body, internal=internal,
                 data={"event": "status", "from": old, "to": to})
    audit_record(actor=actor, action=f"request.{to}", obj=request,
                 changes={"status": {"old": old, "new": to}})


# --- submit ---------------------------------------------------------------------------------------


@transaction.atomic
def request_submit(*, item: CatalogItem, answers, requester, created_by, now=None, title: str = "",
                   description: str = "", data: dict | None = None) -> ServiceRequest:
    """Order `item` for `requester`: the item must be one the requester may order, the answers must fit its
    form (AnswersInvalid names every bad field; nothing is stored). Items needing approval wait for it; the
    others go straight to the item's fulfilment team. `title` (default: the item's name) and `description`
    are the requester's words when a request comes by mail; `data` is recorded on the "created" entry."""
    if not catalog_items_for(requester).filter(id=item.id).exists():
        raise InvalidInput(f"item: no catalog item {item.id} that {requester.username} may order", field="item")
    cleaned = validate_answers(item.fields.all(), answers)
    now = now or timezone.now()
    actor = created_by if created_by is not None and created_by.is_authenticated else None
    request = ServiceRequest.objects.create(
        number=number_next(ServiceRequest.NUMBER_PREFIX),
        title=((title or "").strip() or item.name)[:200],
        description=description or "",
        requester=requester,
        item=item,
        answers=cleaned,
        priority=DEFAULT_PRIORITY,
        status=Status.SUBMITTED,
        created_at=now,
        created_by=actor,
        updated_by=actor,
    )
    timeline_add(ticket=request, kind=TimelineEntry.Kind.SYSTEM, author=created_by,
                 body=f"Requested {item.name}", data={**(data or {}), "event": "created", "item": item.id})
    audit_record(actor=created_by, action="request.submitted", obj=request,
                 changes={"item": item.name, "status": request.status})
    if item.requires_approval:
        _move(request, Status.PENDING_APPROVAL, actor=created_by, body="Waiting for approval", now=now)
        approvals_open(request, actor=created_by, now=now)
    else:
        fulfilment_start(request, actor=created_by, now=now)
    request_sla_sync(request, now=now, reason="Request submitted")
    email_enqueue(template="request_submitted", to=[requester.email],
                  context={"request": request_payload(request)}, thread=request)
    return request


def mail_answers(item: CatalogItem, body: str) -> dict:
    """The answers a mail can give to `item`'s form: none when it asks nothing required, the mail's text when
    its one required question is a text field (cut to the field's length); InvalidInput naming `catalog_item`
    when it asks for more (a mailbox configured with such an item cannot raise requests)."""
    from requests_app import forms_engine

    required = [f for f in item.fields.all() if f.required]
    if not required:
        return {}
    only = required[0]
    if len(required) == 1 and only.type in forms_engine.TEXT_TYPES:
        cap = min(only.max_length or forms_engine.TEXT_CAP[only.type], forms_engine.TEXT_CAP[only.type])
        text = (body or "").strip() or "(no text)"
        return {only.name: text[:cap]}
    labels = ", ".join(f.label for f in required)
    raise InvalidInput(f"catalog_item: {item.name} needs answers a mail cannot give ({labels}); choose an item "
                       "that asks at most one required text question", field="catalog_item")


@transaction.atomic
def request_from_mail(*, item_id: int | None, requester, title: str, body: str, files=(),
                      data: dict | None = None) -> ServiceRequest:
    """A new request from a mail: the mailbox's catalog item, the subject as its title, the text as its
    description (and as the answer of the item's one required text question), the attachments on it (public),
    `data` (which mail, channel "email") on its "created" entry. Approval and fulfilment as for any order."""
    item = CatalogItem.objects.filter(id=item_id).select_related("fulfilment_team").first() if item_id else None
    if item is None:
        raise InvalidInput("catalog_item: the mailbox names no catalog item to order", field="catalog_item")
    answers = mail_answers(item, body)
    request = request_submit(item=item, answers=answers, requester=requester, created_by=requester,
                             title=" ".join((title or "").split()), description=body or "",
                             data={"channel": "email", **(data or {})})
    for upload in files:
        attachment_add(ticket=request, upload=upload, by=requester, internal=False)
    return request


def fulfilment_start(request: ServiceRequest, *, actor, now, body: str = "", automate: bool = True,
                     extra: dict | None = None) -> None:
    """The one way into in_fulfilment (from submitted, approved, failed, or fulfilled when reopened): the
    item's team owns it from now on. An automated item's handler starts too (requests_app.fulfilment: a run and
    its "request.fulfil" outbox message, run by a worker once this commits; a failed request retried starts
    the next round), unless `automate=False` (a reopened request: people take it from here).
    Called inside the caller's transaction with the row locked."""
    team = request.item.fulfilment_team
    request.assignment_group = team
    extra = {"assignment_group": team, **(extra or {})}
    if automate and request.item.automated:
        from requests_app.fulfilment import handler_get, run_begin

        handler = handler_get(request.item.handler)
        label = handler.label if handler else request.item.handler
        _move(request, Status.IN_FULFILMENT, actor=actor, now=now, extra=extra,
              body=body or f"Being fulfilled automatically ({label}); {team.name} takes over if that fails")
        run_begin(request)
        return
    _move(request, Status.IN_FULFILMENT, actor=actor, now=now, body=body or f"Sent to {team.name} for fulfilment",
          extra=extra)


def _run_close(request: ServiceRequest, state: str, error: str = "") -> None:
    """Whatever ends the request's fulfilment ends its automated run too: a later callback or timeout of that
    run then finds nothing to act on."""
    FulfilmentRun.objects.filter(request=request).exclude(state=state).update(
        state=state, callback_nonce="", deadline=None, last_error=error[:4000], updated_at=timezone.now())


# --- conversation ---------------------------------------------------------------------------------


@transaction.atomic
def request_comment_add(*, request: ServiceRequest, author, body: str, internal: bool = False,
                        files=(), data: dict | None = None) -> TimelineEntry:
    """A public reply (the requester, a watcher or an agent) or an internal note (agents only), with
    attachments; `data` is merged into the entry's data (the email channel records the mail). A public reply
    is mailed to the other side and to the watchers, never to its author; notes reach nobody outside the desk.
    A reply from the requester or a watcher who is not an agent reopens a request fulfilled within
    REQUEST_REOPEN_DAYS (later, it stays a comment). Closed and cancelled requests take notes only."""
    body = (body or "").strip()
    if not body and not files:
        raise InvalidInput("body: write something or attach a file", field="body")
    if internal and not is_staff_role(author):
        raise InvalidInput("internal: only agents can write internal notes", field="internal")
    if not body:
        body = "Attached " + ", ".join(upload.name.rsplit("/", 1)[-1] for upload in files)
    locked = _lock(request.id)
    if locked.status in FINAL and not internal:
        raise TransitionNotAllowed(
            f"{locked.number} is {locked.get_status_display().lower()}: order again or raise an incident instead",
            field="status")
    entry = timeline_add(ticket=locked, kind=TimelineEntry.Kind.NOTE if internal else TimelineEntry.Kind.COMMENT,
                         author=author, body=body, data=data)
    for upload in files:
        attachment_add(ticket=locked, upload=upload, by=author, entry=entry, internal=internal)
    ticket_save(locked, author, [])
    from_requester = author.id == locked.requester_id
    from_caller = from_requester or (not is_staff_role(author) and is_watcher(locked, author))
    if from_caller and not internal:
        deadline = reopen_deadline(locked)
        if deadline is not None and timezone.now() <= deadline:
            locked = request_reopen(request_id=locked.id, actor=author,
                                    reason="The requester replied" if from_requester else "A watcher replied")
    request.version, request.updated_at, request.status = locked.version, locked.updated_at, locked.status
    if not internal:
        comment = {"author": author.get_full_name() or author.username, "body": body}
        payload = request_payload(locked)
        mailed = [author.email] if author.email else []
        if from_caller:
            # The link in the mail: agents work the request in the workspace, the requester on the portal.
            # Public mail: the agent's answer to it by mail is a public reply the requester gets.
            to = [locked.assignee.email] if locked.assignee_id else team_addresses(locked.assignment_group)
            to = [address for address in to if address and address not in mailed]
            email_enqueue(template="request_comment", to=to,
                          context={"request": payload, "comment": comment, "audience": "agent"}, thread=locked)
            mailed += to
        if not from_requester and locked.requester.email and locked.requester.email not in mailed:
            email_enqueue(template="request_comment", to=[locked.requester.email],
                          context={"request": payload, "comment": comment, "audience": "requester"}, thread=locked)
            mailed.append(locked.requester.email)
        watchers_mail_reply(locked, author=author, template="request_comment", exclude=mailed,
                            context={"request": payload, "comment": comment})
    return entry


# --- lifecycle ------------------------------------------------------------------------------------


@transaction.atomic
def request_cancel(*, request_id: int, actor, version: int | None = None, reason: str = "") -> ServiceRequest:
    """The requester or an agent withdraws a request that is not yet fulfilled (or closed)."""
    request = _lock(request_id)
    ticket_check_version(request, version)
    if actor is not None and not is_staff_role(actor) and request.requester_id != actor.id:
        raise TransitionNotAllowed(f"only the requester or an agent can cancel {request.number}")
    if request.status not in CANCELLABLE:
        raise TransitionNotAllowed(
            f"{request.number} is {request.get_status_display().lower()}: it can no longer be cancelled",
            field="status")
    now = timezone.now()
    body = "Cancelled" + (f": {reason.strip()}" if reason.strip() else "")
    _move(request, Status.CANCELLED, actor=actor, body=body, now=now, extra={"closed_at": now})
    _run_close(request, FulfilmentRun.State.FAILED, "the request was cancelled")
    approvals_cancel(request, now=now)  # nobody is asked any more
    request_sla_sync(request, now=now, reason="Request cancelled")
    return request


def reopen_deadline(request: ServiceRequest):
    """Until when a fulfilled request may be reopened (None: it is not fulfilled)."""
    from datetime import timedelta

    from django.conf import settings

    if request.status != Status.FULFILLED or request.fulfilled_at is None:
        return None
    return request.fulfilled_at + timedelta(days=settings.REQUEST_REOPEN_DAYS)


@transaction.atomic
def request_reopen(*, request_id: int, actor, reason: str, version: int | None = None,
                   now=None) -> ServiceRequest:
    """The requester (or an agent) says a fulfilled request is not done: back to in fulfilment with the item's
    team, within REQUEST_REOPEN_DAYS of its fulfilment, saying why. People take it from here: an automated
    handler does not run again."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("reason: say what is still missing or wrong", field="reason")
    request = _lock(request_id)
    ticket_check_version(request, version)
    if (actor is not None and not is_staff_role(actor) and request.requester_id != actor.id
            and not is_watcher(request, actor)):
        raise TransitionNotAllowed(f"only the requester, a watcher or an agent can reopen {request.number}")
    now = now or timezone.now()
    deadline = reopen_deadline(request)
    if deadline is None:
        raise TransitionNotAllowed(f"only a fulfilled request can be reopened; {request.number} is "
                                   f"{request.get_status_display().lower()}", field="status")
    if now > deadline:
        raise TransitionNotAllowed(
            f"{request.number} was fulfilled more than {(deadline - request.fulfilled_at).days} days ago: "
            "order it again or report an issue instead", field="status")
    fulfilment_start(request, actor=actor, now=now, automate=False, body=f"Reopened: {reason}",
                     extra={"fulfilled_at": None, "fulfilled_by_handler": False})
    request_sla_sync(request, now=now, reason="Request reopened")
    to = team_addresses(request.assignment_group) if request.assignment_group_id else []
    if request.assignee_id and request.assignee.email:
        to = [request.assignee.email]
    to = [address for address in to if address and (actor is None or address != actor.email)]
    if to:
        author = (actor.get_full_name() or actor.username) if actor is not None else "Service desk"
        email_enqueue(template="request_comment", to=to, context={
            "request": request_payload(request), "comment": {"author": author, "body": f"Reopened: {reason}"},
            "audience": "agent"}, thread=request, internal=True)
    return request


@transaction.atomic
def request_fulfil(*, request_id: int, actor, note: str, version: int | None = None) -> ServiceRequest:
    """It was delivered (by an agent, or by the automated handler with actor None): in fulfilment ->
    fulfilled, saying what was done (shown to the requester, and mailed to them)."""
    note = (note or "").strip()
    if not note:
        raise InvalidInput("note: say what was delivered", field="note")
    request = _lock(request_id)
    ticket_check_version(request, version)
    now = timezone.now()
    _move(request, Status.FULFILLED, actor=actor, body=f"Fulfilled: {note}", now=now, extra={"fulfilled_at": now, "fulfilled_by_handler": actor is None})
    _run_close(request, FulfilmentRun.State.DONE)
    request_sla_sync(request, now=now, reason="Request fulfilled")
    email_enqueue(template="request_fulfilled", to=[request.requester.email],
                  context={"request": request_payload(request), "note": note}, thread=request)
    return request


@transaction.atomic
def request_fail(*, request_id: int, error: str, actor=None, version: int | None = None) -> ServiceRequest:
    """Automated fulfilment gave up: in fulfilment -> failed, back in the item's team queue (no assignee) with
    the error on an internal note, and the team mailed. The requester reads only that a person takes over."""
    error = (error or "").strip() or "no reason given"
    request = _lock(request_id)
    ticket_check_version(request, version)
    now = timezone.now()
    team = request.item.fulfilment_team
    _move(request, Status.FAILED, actor=actor, now=now, extra={"assignment_group": team, "assignee": None},
          body=f"We could not complete this automatically; {team.name} will take it from here")
    run = FulfilmentRun.objects.filter(request=request).first()
    handler = run.handler if run else (request.item.handler or "fulfilment")
    timeline_add(ticket=request, kind=TimelineEntry.Kind.NOTE, author=actor,
                 body=f"Automated fulfilment ({handler}) failed: {error}",
                 data={"event": "fulfilment_failed", "handler": handler, "error": error[:2000]})
    _run_close(request, FulfilmentRun.State.FAILED, error)
    request_sla_sync(request, now=now, reason="Automated fulfilment failed")
    email_enqueue(template="request_failed", to=team_addresses(team),
                  context={"request": request_payload(request), "error": error[:2000], "handler": handler},
                  thread=request, internal=True)
    return request


@transaction.atomic
def request_retry(*, request_id: int, actor, version: int | None = None) -> ServiceRequest:
    """An agent sends a failed request back into fulfilment (fulfilment_start): an automated item's handler
    runs again, from its first step, as the run's next round."""
    request = _lock(request_id)
    ticket_check_version(request, version)
    if request.status != Status.FAILED:
        raise TransitionNotAllowed(
            f"{request.number} is {request.get_status_display().lower()}: only a failed request can be retried",
            field="status")
    now = timezone.now()
    fulfilment_start(request, actor=actor, now=now)
    request_sla_sync(request, now=now, reason="Fulfilment retried")
    return request


@transaction.atomic
def request_close(*, request_id: int, actor, version: int | None = None) -> ServiceRequest:
    """Close a fulfilled (or rejected) request; closed is final."""
    request = _lock(request_id)
    ticket_check_version(request, version)
    now = timezone.now()
    _move(request, Status.CLOSED, actor=actor, body="Closed", now=now, extra={"closed_at": now})
    request_sla_sync(request, now=now, reason="Request closed")
    return request


@transaction.atomic
def request_assign(*, request_id: int, actor, assignment_group, reason: str = "",
                   version: int | None = None) -> ServiceRequest:
    """Hand an open request to another team (SLA escalations use it); the assignee is cleared."""
    request = _lock(request_id)
    ticket_check_version(request, version)
    if request.status in FINAL:
        raise TransitionNotAllowed(f"{request.number} is {request.get_status_display().lower()}: it cannot change")
    old = request.assignment_group.name if request.assignment_group_id else None
    request.assignment_group = assignment_group
    request.assignee = None
    ticket_save(request, actor, ["assignment_group", "assignee"])
    timeline_add(ticket=request, kind=TimelineEntry.Kind.CHANGE, author=actor, internal=True,
                 body=f"Team {old or 'none'} → {assignment_group.name}" + (f" ({reason})" if reason else ""),
                 data={"assignment_group": [old, assignment_group.name]})
    audit_record(actor=actor, action="request.assigned", obj=request,
                 changes={"assignment_group": {"old": old, "new": assignment_group.name}})
    request_sla_sync(request, reason=f"Team → {assignment_group.name}")
    return request


@transaction.atomic
def request_priority_raise(*, request_id: int, actor, reason: str = "") -> ServiceRequest:
    """Raise an open request's priority by one step (SLA escalations use it); P1 stays P1."""
    request = _lock(request_id)
    if request.status in FINAL or request.priority <= 1:
        return request
    old = request.priority
    request.priority = old - 1
    ticket_save(request, actor, ["priority"])
    timeline_add(ticket=request, kind=TimelineEntry.Kind.CHANGE, author=actor, internal=True,
                 body=f"Priority P{old} → P{request.priority}" + (f" ({reason})" if reason else ""),
                 data={"priority": [old, request.priority]})
    audit_record(actor=actor, action="request.priority_raised", obj=request,
                 changes={"priority": {"old": old, "new": request.priority}})
    request_sla_sync(request, reason=f"Priority P{old} → P{request.priority}")
    return request


@transaction.atomic
def request_assignee_set(*, request_id: int, actor, assignee, assignment_group=None,
                         version: int | None = None) -> ServiceRequest:
    """Give an open request to an agent of its team (None: nobody), moving it to `assignment_group` first when
    one is given. The person must be an agent and a member of the team it ends up in. Asking for what is
    already so changes nothing (a retried call does not bump the version)."""
    request = _lock(request_id)
    ticket_check_version(request, version)
    if request.status in FINAL:
        raise TransitionNotAllowed(f"{request.number} is {request.get_status_display().lower()}: it cannot change",
                                   field="status")
    old_group, old_person = request.assignment_group, request.assignee
    group = assignment_group if assignment_group is not None else old_group
    if assignee is not None:
        if not is_staff_role(assignee):
            raise InvalidInput(f"assignee: {assignee.username} is not an agent", field="assignee")
        if group is not None and not TeamMembership.objects.filter(team=group, user=assignee).exists():
            raise InvalidInput(f"assignee: {assignee.username} is not a member of {group.name}", field="assignee")
    if (group, assignee) == (old_group, old_person):
        return request
    request.assignment_group, request.assignee = group, assignee
    ticket_save(request, actor, ["assignment_group", "assignee"])
    timeline_changes(ticket=request, author=actor, internal=True, changes={
        "assignment_group": (old_group.name if old_group else None, group.name if group else None),
        "assignee": (old_person.username if old_person else None, assignee.username if assignee else None),
    })
    audit_record(actor=actor, action="request.assigned", obj=request, changes={
        "assignment_group": {"old": old_group.name if old_group else None, "new": group.name if group else None},
        "assignee": {"old": old_person.username if old_person else None,
                     "new": assignee.username if assignee else None},
    })
    if group != old_group:
        request_sla_sync(request, reason=f"Team → {group.name}" if group else "Team removed")
    if assignee is not None and assignee != old_person and assignee != actor and assignee.email:
        by = (actor.get_full_name() or actor.username) if actor is not None else "Servicedesk"
        email_enqueue(template="request_assigned", to=[assignee.email],
                      context={"request": request_payload(request), "assigned_by": by}, thread=request,
                      internal=True)
    return request
