"""Watchers of a ticket, for every ticket type: people besides the requester who hear of each public reply
by mail (never of internal notes) and may answer it by mail.

    watcher_add(ticket=incident, user=colleague, by=agent)      # idempotent; a timeline line and an audit row
    watcher_remove(ticket=incident, user=colleague, by=agent)   # False when they were not watching
    watchers_emails(ticket) / watchers_of(ticket) / is_watcher(ticket, user) / mail_may_reply(ticket, user)

Who may add or remove watchers is the caller's business (agents only: the workspace card and the API check it).
"""

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from servicedesk.errors import InvalidInput
from servicedesk.models import TimelineEntry, Watcher
from servicedesk.roles import STAFF_ROLES, is_staff_role
from servicedesk.services import audit_record, timeline_add


def _of(ticket):
    return Watcher.objects.filter(content_type=ContentType.objects.get_for_model(ticket), object_id=ticket.pk)


def _lock(ticket) -> None:
    """Hold the ticket's row: two people adding the same watcher write one timeline line, not two."""
    type(ticket).objects.select_for_update().filter(pk=ticket.pk).exists()


def _name(user) -> str:
    return user.get_full_name() or user.username


def watchers_of(ticket):
    """The ticket's watchers (Watcher rows with their users), oldest first: one query."""
    return _of(ticket).select_related("user").order_by("created_at", "id")


def watchers_emails(ticket) -> list[str]:
    """The addresses of the ticket's active watchers (those with an address), in the order they were added."""
    return [address for address in _of(ticket).filter(user__is_active=True).exclude(user__email="")
            .order_by("created_at", "id").values_list("user__email", flat=True)]


def is_watcher(ticket, user) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return _of(ticket).filter(user_id=user.pk).exists()


def mail_may_reply(ticket, user) -> bool:
    """Whether a mail from `user` may become a public reply on `ticket`: the requester, a watcher or an agent
    (staff role). Anyone else's mail about it opens a ticket of their own."""
    if user is None or not getattr(user, "is_active", False):
        return False
    return user.pk == ticket.requester_id or is_staff_role(user) or is_watcher(ticket, user)


def watcher_user_find(text: str):
    """The active person `text` names, by username or email address (case does not matter), or None."""
    text = (text or "").strip()
    if not text:
        return None
    User = get_user_model()
    found = list(User.objects.filter(Q(username__iexact=text) | Q(email__iexact=text), is_active=True)[:2])
    if len(found) == 1:
        return found[0]
    exact = [user for user in found if user.username == text]
    return exact[0] if exact else None


@transaction.atomic
def watcher_add(*, ticket, user, by) -> Watcher:
    """Make `user` a watcher of `ticket`; adding someone who already watches changes nothing. The requester
    is not a watcher (they hear of every reply already), nor is a person without an active account and an
    email address (a watcher is someone we mail)."""
    if user is None or not user.is_active:
        raise InvalidInput("user: no active person by that name", field="user")
    if user.pk == ticket.requester_id:
        raise InvalidInput(f"user: {user.username} is the requester; they hear of every reply already",
                           field="user")
    if not user.email:
        raise InvalidInput(f"user: {user.username} has no email address to be told at", field="user")
    _lock(ticket)
    existing = _of(ticket).filter(user=user).first()
    if existing is not None:
        return existing
    watcher = Watcher.objects.create(content_type=ContentType.objects.get_for_model(ticket), object_id=ticket.pk,
                                     user=user, added_by=by if by is not None and by.is_authenticated else None)
    timeline_add(ticket=ticket, kind=TimelineEntry.Kind.SYSTEM, author=by, internal=True,
                 body=f"{_name(user)} watches this now", data={"event": "watcher_added", "user": user.username})
    audit_record(actor=by, action="watcher.added", obj=ticket, changes={"watcher": user.username})
    return watcher


@transaction.atomic
def watcher_remove(*, ticket, user, by) -> bool:
    """`user` stops watching `ticket`. False (and nothing written) when they were not watching."""
    _lock(ticket)
    deleted, _ = _of(ticket).filter(user=user).delete()
    if not deleted:
        return False
    timeline_add(ticket=ticket, kind=TimelineEntry.Kind.SYSTEM, author=by, internal=True,
                 body=f"{_name(user)} no longer watches this", data={"event": "watcher_removed",
                                                                       "user": user.username})
    audit_record(actor=by, action="watcher.removed", obj=ticket, changes={"watcher": user.username})
    return True


def watcher_recipients(ticket, *, author, exclude: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """Who of the watchers is mailed about a public reply by `author`: (agents, others) addresses, the author
    and anyone in `exclude` (already mailed) left out. Agents get the workspace link, others the reply-by-mail
    wording."""
    skip = {address.lower() for address in exclude if address}
    if author is not None and getattr(author, "email", ""):
        skip.add(author.email.lower())
    agents, others = [], []
    # Who is an agent is read in the same query (a staff role's group, or a superuser, as role_of decides),
    # not one role lookup per watcher on every public reply.
    memberships = get_user_model().groups.through.objects.filter(
        user_id=OuterRef("user_id"), group__name__in=[role.value for role in STAFF_ROLES])
    rows = (watchers_of(ticket).filter(user__is_active=True).exclude(user__email="")
            .annotate(staff=Exists(memberships)))
    for watcher in rows:
        address = watcher.user.email
        if address.lower() in skip or (author is not None and watcher.user_id == author.pk):
            continue
        skip.add(address.lower())
        (agents if watcher.staff or watcher.user.is_superuser else others).append(address)
    return agents, others


def watchers_mail_reply(ticket, *, author, template: str, context: dict, exclude: list[str]) -> None:
    """Mail a public reply to the ticket's watchers who were not mailed already (`exclude`) and did not write it:
    agents with the workspace link, the others with the reply-by-mail wording (`context["audience"]`). The one
    way incidents and requests tell their watchers, each watcher in a mail of their own."""
    from servicedesk.notifications import email_enqueue

    agents, others = watcher_recipients(ticket, author=author, exclude=tuple(exclude))
    email_enqueue(template=template, to=agents, context={**context, "audience": "agent"}, thread=ticket)
    email_enqueue(template=template, to=others, context={**context, "audience": "watcher"}, thread=ticket)
