"""Approvals of service requests: every write to an `Approval` goes through here.

A catalog item's approval policy is its ordered `ApprovalLevel`s. When a request for such an item is submitted
(requests_app.services.request_submit moves it to pending_approval) level 1 opens: one `Approval` row per
approver, and a mail to each with signed one-time Approve / Reject links. Approvers are the requester's manager
(Profile.manager) or the active members of a group; the requester never approves their own request. When a
level names nobody, it falls to the item's fallback group, then to every admin, and the timeline says so;
fallback approvers decide any-of.

`approval_decide` locks the request, then the approval: any-of levels are done at the first approval (the
others become "skipped"), all-of levels when every approver approved; one rejection rejects the request
(pending_approval -> rejected, the requester is mailed the comment, fulfilment never starts). The last level
done moves the request pending_approval -> approved and hands it to `fulfilment_start`. Admins may decide
any pending approval: recorded as an override. Every decision, with its comment, goes on the public timeline
and into the audit log; a repeated click by the same person with the same decision changes nothing.

A reminder goes once to each approval still pending after settings.APPROVAL_REMINDER_HOURS
(`approvals_remind`, run by beat; it reads only due rows through a partial index).
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from requests_app.models import Approval, ApprovalKind, ApprovalLevel, ApprovalMode, ServiceRequest
from requests_app.states import Status
from servicedesk.errors import InvalidInput, NotVisible, TransitionNotAllowed
from servicedesk.models import Profile, TimelineEntry
from servicedesk.notifications import email_enqueue
from servicedesk.roles import Role, role_of
from servicedesk.services import audit_record, timeline_add

State = Approval.State
LINK_SALT = "requests_app.approval-link"


def person(user) -> str:
    return (user.get_full_name() or user.username) if user is not None else "someone"


def is_admin(user) -> bool:
    return user is not None and user.is_authenticated and role_of(user) == Role.ADMIN


def admins():
    """Active admins: superusers and members of the admin role group (one query, no duplicates)."""
    from django.contrib.auth.models import Group

    User = get_user_model()
    in_admin_group = Group.objects.filter(user=OuterRef("pk"), name=Role.ADMIN.value)
    return User.objects.filter(Q(is_superuser=True) | Q(Exists(in_admin_group)), is_active=True)


# --- who approves ---------------------------------------------------------------------------------


def _others(users, requester) -> list:
    """Active users of `users` other than the requester (nobody approves their own request), by id."""
    return list(users.filter(is_active=True).exclude(id=requester.id).order_by("id"))


def approvers_resolve(request: ServiceRequest, level: ApprovalLevel) -> tuple[list, str, str]:
    """(approvers, via, fallback note) for `level` of `request`. The note is "" when the level's own approvers
    decide, else it says why the level fell to the fallback group or to the admins."""
    requester = request.requester
    if level.kind == ApprovalKind.MANAGER:
        manager = Profile.objects.filter(user=requester).values_list("manager", flat=True).first()
        people = _others(get_user_model().objects.filter(id=manager), requester) if manager else []
        if people:
            return people, f"Manager of {person(requester)}", ""
        missing = f"No manager for {person(requester)}" if not manager else \
            f"The manager of {person(requester)} cannot approve (inactive)"
    else:
        people = _others(level.group.user_set.all(), requester)
        if people:
            return people, f"Group {level.group.name}", ""
        missing = f"No one in the group {level.group.name} can approve"
    fallback = request.item.approval_fallback_group
    if fallback is not None:
        people = _others(fallback.user_set.all(), requester)
        if people:
            return people, f"Fallback group {fallback.name}", f"{missing}: falls to the group {fallback.name}"
        missing = f"{missing}, nor anyone in the fallback group {fallback.name}"
    people = _others(admins(), requester) or list(admins().order_by("id"))  # an admin's own request: still decided
    return people, "Admins", f"{missing}: falls to the admins"


# --- signed one-time links ------------------------------------------------------------------------


def link_token(approval: Approval) -> str:
    """A signed, timestamped token naming the approval and its approver: the authority of the mailed links."""
    return signing.dumps({"a": approval.id, "u": approval.approver_id}, salt=LINK_SALT, compress=True)


class LinkInvalid(Exception):
    """The link is expired, tampered with or names an approval that does not exist."""

    def __init__(self, message: str, *, expired: bool = False):
        super().__init__(message)
        self.expired = expired


def link_approval(token: str) -> Approval:
    """The approval a mailed link names, if its signature holds and it is younger than the link lifetime."""
    max_age = timedelta(days=settings.APPROVAL_LINK_MAX_AGE_DAYS)
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=max_age)
    except signing.SignatureExpired as error:
        raise LinkInvalid("This link has expired. Open your approvals inbox to decide.", expired=True) from error
    except signing.BadSignature as error:
        raise LinkInvalid("This link is not valid. Open your approvals inbox to decide.") from error
    found = (Approval.objects.select_related("request__item", "request__requester", "approver", "decided_by")
             .filter(id=data.get("a"), approver_id=data.get("u")).first())
    if found is None:
        raise LinkInvalid("This link is not valid. Open your approvals inbox to decide.")
    return found


def link_url(approval: Approval, decision: str) -> str:
    path = reverse("portal:approval-link", kwargs={"token": link_token(approval)})
    return f"{settings.SITE_URL.rstrip('/')}{path}?decision={decision}"


# --- what approvers read --------------------------------------------------------------------------


def answer_text(value) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def answer_rows(request: ServiceRequest) -> list[tuple[str, str]]:
    """(label, answer) of the request's answers in the form's order (reads `item.fields`, prefetch it)."""
    return [(field.label, answer_text(request.answers.get(field.name))) for field in request.item.fields.all()
            if field.name in request.answers]


def _mail_context(approval: Approval) -> dict:
    from requests_app.services import request_payload

    request = approval.request
    return {
        "request": request_payload(request),
        "approval": {
            "id": approval.id, "level": approval.level, "via": approval.via,
            "approver_name": person(approval.approver),
            "approve_url": link_url(approval, "approve"), "reject_url": link_url(approval, "reject"),
            "inbox_url": settings.SITE_URL.rstrip("/") + reverse("portal:approvals"),
            "link_days": settings.APPROVAL_LINK_MAX_AGE_DAYS,
        },
        "answers": [{"label": label, "value": value} for label, value in answer_rows(request)],
    }


def _mail_approver(approval: Approval, template: str) -> None:
    if approval.approver.email:
        # Internal: the approver is not the requester's side, so a reply to this mail is never a public one.
        email_enqueue(template=template, to=[approval.approver.email], context=_mail_context(approval),
                      thread=approval.request, internal=True)


# --- opening levels -------------------------------------------------------------------------------


def approval_level_open(request: ServiceRequest, number: int, *, actor, now) -> bool:
    """Open level `number` (1-based) of the item's policy: its approvals, a timeline line, a mail to each
    approver. False when the policy has no such level. Inside the caller's transaction, request locked."""
    levels = list(request.item.approval_levels.select_related("group").order_by("order", "id"))
    if number > len(levels):
        return False
    level = levels[number - 1]
    people, via, note = approvers_resolve(request, level)
    mode = level.mode if not note else ApprovalMode.ANY
    if note:
        timeline_add(ticket=request, kind=TimelineEntry.Kind.SYSTEM, author=None, body=note,
                     data={"event": "approval_fallback", "level": number})
    if not people:
        timeline_add(ticket=request, kind=TimelineEntry.Kind.SYSTEM, author=None, internal=True,
                     body="Nobody can approve: there is no active admin. Add one, then cancel and order again.",
                     data={"event": "approval_nobody", "level": number})
        return True
    rows = Approval.objects.bulk_create(
        Approval(request=request, level=number, mode=mode, via=via, approver=user, created_at=now)
        for user in people)
    who = ", ".join(person(user) for user in people)
    how = "" if len(people) == 1 else (" (all of them)" if mode == ApprovalMode.ALL else " (any one of them)")
    steps = f" (step {number} of {len(levels)})" if len(levels) > 1 else ""
    timeline_add(ticket=request, kind=TimelineEntry.Kind.SYSTEM, author=None,
                 body=f"Approval asked of {who}{how}{steps}",
                 data={"event": "approval_level", "level": number, "approvers": [u.username for u in people],
                       "mode": mode})
    for row in rows:
        _mail_approver(row, "approval_requested")
    return True


def approvals_open(request: ServiceRequest, *, actor, now) -> None:
    """Called by request_submit once the request is pending approval: open the first level."""
    approval_level_open(request, 1, actor=actor, now=now)


def approvals_cancel(request: ServiceRequest, *, now) -> int:
    """The request is cancelled: its pending approvals are too (nobody is asked any more)."""
    return Approval.objects.filter(request=request, state=State.PENDING).update(state=State.CANCELLED,
                                                                                decided_at=now)


# --- deciding -------------------------------------------------------------------------------------


def _already(approval: Approval) -> str:
    if approval.state in (State.APPROVED, State.REJECTED):
        when = timezone.localtime(approval.decided_at).strftime("%Y-%m-%d %H:%M")
        return (f"This approval was already {approval.get_state_display().lower()} by "
                f"{person(approval.decided_by)} on {when}")
    if approval.state == State.SKIPPED:
        return "This approval is no longer needed: another approver of the same step decided first"
    return "This approval was cancelled: the request no longer waits for it"


@transaction.atomic
def approval_decide(*, approval_id: int, actor, approve: bool, comment: str = "", now=None) -> Approval:
    """Approve or reject one pending approval as its approver, or as an admin (an override).

    NotVisible (404) unless the actor is the approver or an admin; InvalidInput (400, `comment`) for a
    rejection without a reason; TransitionNotAllowed (409) when it was already decided (a repeat of the same
    person's same decision returns it unchanged) or the request no longer waits for approval."""
    from requests_app.services import _lock, fulfilment_start, request_payload

    comment = (comment or "").strip()
    request_id = Approval.objects.filter(id=approval_id).values_list("request_id", flat=True).first()
    if request_id is None or actor is None or not actor.is_authenticated:
        raise NotVisible(f"approval: no approval {approval_id} for you to decide", field="approval")
    # The request first, then the approval: every writer of a request's approvals holds the request's lock,
    # so two approvers of one level never both complete it (nor open the next level twice).
    request = _lock(request_id)
    approval = (Approval.objects.select_for_update(of=("self",)).select_related("approver", "decided_by")
                .get(id=approval_id))
    if approval.approver_id != actor.id and not is_admin(actor):
        raise NotVisible(f"approval: no approval {approval_id} for you to decide", field="approval")
    wanted = State.APPROVED if approve else State.REJECTED
    if approval.state != State.PENDING:
        if approval.state == wanted and approval.decided_by_id == actor.id:
            return approval  # a double click or a retried POST: decided once, nothing more
        raise TransitionNotAllowed(_already(approval), field="state")
    if request.status != Status.PENDING_APPROVAL:
        raise TransitionNotAllowed(f"{request.number} is {request.get_status_display().lower()}: "
                                   "it no longer waits for approval", field="status")
    if not approve and not comment:
        raise InvalidInput("comment: say why you reject it; the requester reads it", field="comment")

    now = now or timezone.now()
    override = approval.approver_id != actor.id
    approval.state, approval.decided_by, approval.decided_at = wanted, actor, now
    approval.comment, approval.override = comment, override
    approval.save(update_fields=["state", "decided_by", "decided_at", "comment", "override"])
    verb = "Approved" if approve else "Rejected"
    body = f"{verb} by {person(actor)}"
    if override:
        body += f" in place of {person(approval.approver)} (admin override)"
    if comment:
        body += f": {comment}"
    timeline_add(ticket=request, kind=TimelineEntry.Kind.SYSTEM, author=actor, body=body,
                 data={"event": "approval", "approval": approval.id, "level": approval.level, "decision": wanted,
                       "override": override, "comment": comment})
    audit_record(actor=actor, action=f"approval.{wanted}", obj=request,
                 changes={"approval": approval.id, "level": approval.level, "approver": approval.approver.username,
                          "override": override, "comment": comment})

    if not approve:
        Approval.objects.filter(request=request, state=State.PENDING).update(state=State.CANCELLED, decided_at=now)
        _request_decided(request, Status.REJECTED, actor=actor, now=now, body="Rejected: it will not be fulfilled")
        email_enqueue(template="request_rejected", to=[request.requester.email],
                      context={"request": request_payload(request),
                               "decision": {"by": person(actor), "comment": comment}}, thread=request)
        return approval

    same_level = Approval.objects.filter(request=request, level=approval.level, state=State.PENDING)
    if approval.mode == ApprovalMode.ANY:
        same_level.update(state=State.SKIPPED, decided_at=now)
    elif same_level.exists():
        _touch(request, actor)  # all-of: the level waits for the others
        return approval
    if approval_level_open(request, approval.level + 1, actor=actor, now=now):
        _touch(request, actor)
        return approval
    _request_decided(request, Status.APPROVED, actor=actor, now=now, body="Approved")
    email_enqueue(template="request_approved", to=[request.requester.email],
                  context={"request": request_payload(request), "decision": {"by": person(actor),
                                                                             "comment": comment}},
                  thread=request)
    fulfilment_start(request, actor=actor, now=now)
    _sla(request, now, "Request approved")
    return approval


def _touch(request: ServiceRequest, actor) -> None:
    from servicedesk.tickets import ticket_save

    ticket_save(request, actor, [])  # the version moves: a page showing the old approval state is stale


def _request_decided(request: ServiceRequest, to: str, *, actor, now, body: str) -> None:
    from requests_app.services import _move

    _move(request, to, actor=actor, body=body, now=now)
    if to == Status.REJECTED:
        _sla(request, now, "Request rejected")


def _sla(request: ServiceRequest, now, reason: str) -> None:
    from requests_app.sla import request_sla_sync

    request_sla_sync(request, now=now, reason=reason)


# --- reminders ------------------------------------------------------------------------------------


def approvals_remind(*, now=None, batch: int = 500) -> int:
    """Mail a reminder for each approval pending for longer than APPROVAL_REMINDER_HOURS and not reminded yet;
    each once. Reads only due rows (partial index approval_remind_due_idx) and claims them with SKIP LOCKED,
    so two sweeps at once never remind twice. Returns how many it reminded."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.APPROVAL_REMINDER_HOURS)
    with transaction.atomic():
        due = list(Approval.objects.select_for_update(skip_locked=True, of=("self",))
                   .filter(state=State.PENDING, reminded_at__isnull=True, created_at__lte=cutoff)
                   .select_related("request__item", "request__requester", "request__assignment_group",
                                   "approver")
                   .order_by("created_at", "id")[:batch])
        for approval in due:
            approval.reminded_at = now
        Approval.objects.bulk_update(due, ["reminded_at"])
        for approval in due:
            _mail_approver(approval, "approval_reminder")
    return len(due)
