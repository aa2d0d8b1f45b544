"""Write paths of the shared kernel: timeline, attachments, audit, priority, people."""

import os
import re
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import ProtectedError, Q
from django.template.defaultfilters import filesizeformat

from servicedesk.errors import InvalidInput
from servicedesk.mailthread import ticket_kind_of
from servicedesk.models import (
    Attachment,
    AuditLog,
    IdempotencyKey,
    Organisation,
    OutboxMessage,
    PriorityRule,
    Profile,
    Team,
    TeamMembership,
    Ticket,
    TimelineEntry,
    Watcher,
    WebhookDelivery,
)
from servicedesk.registry import registry
from servicedesk.roles import Role, ensure_roles, role_of
from servicedesk.uploads import UNKNOWN_BINARY, sniff_content_type

DEFAULT_PRIORITY_MATRIX = {
    (1, 1): 1,
    (1, 2): 2,
    (2, 1): 2,
    (1, 3): 3,
    (2, 2): 3,
    (3, 1): 3,
    (2, 3): 4,
    (3, 2): 4,
    (3, 3): 5,
}


# --- priority -------------------------------------------------------------------------------------


def priority_matrix_ensure_default() -> int:
    """Fill the missing cells of the matrix with the ITIL default; keeps cells an admin changed."""
    existing = set(PriorityRule.objects.values_list("impact", "urgency"))
    missing = [
        PriorityRule(impact=i, urgency=u, priority=p)
        for (i, u), p in DEFAULT_PRIORITY_MATRIX.items()
        if (i, u) not in existing
    ]
    PriorityRule.objects.bulk_create(missing, ignore_conflicts=True)
    return len(missing)


def priority_for(*, impact: int, urgency: int) -> int:
    for name, value in (("impact", impact), ("urgency", urgency)):
        if value not in (1, 2, 3):
            raise InvalidInput(f"{name} must be 1 (high), 2 (medium) or 3 (low), not {value!r}", field=name)
    rule = PriorityRule.objects.filter(impact=impact, urgency=urgency).values_list("priority", flat=True).first()
    return rule if rule is not None else DEFAULT_PRIORITY_MATRIX[(impact, urgency)]


# --- timeline -------------------------------------------------------------------------------------


def timeline_add(
    *, ticket, kind: str, author=None, body: str = "", internal: bool | None = None, data: dict | None = None
) -> TimelineEntry:
    """Append one entry to a ticket's timeline. Notes are always internal, comments never."""
    if kind == TimelineEntry.Kind.NOTE:
        internal = True
    elif kind == TimelineEntry.Kind.COMMENT:
        internal = False
    elif internal is None:
        internal = False
    if kind in (TimelineEntry.Kind.COMMENT, TimelineEntry.Kind.NOTE) and not body.strip():
        raise InvalidInput("body: a comment cannot be empty", field="body")
    return TimelineEntry.objects.create(
        content_type=ContentType.objects.get_for_model(ticket),
        object_id=ticket.pk,
        kind=kind,
        author=author,
        body=body,
        internal=internal,
        data=data or {},
    )


def timeline_changes(*, ticket, author, changes: dict[str, tuple], internal: bool = False) -> TimelineEntry | None:
    """One 'field change' entry listing every changed field with old and new value."""
    changes = {k: {"old": old, "new": new} for k, (old, new) in changes.items() if old != new}
    if not changes:
        return None
    return timeline_add(ticket=ticket, kind=TimelineEntry.Kind.CHANGE, author=author, internal=internal,
                        data={"changes": changes})


# --- attachments ----------------------------------------------------------------------------------


def attachment_validate(*, filename: str, size: int, upload=None) -> str:
    """Return the attachment's content type, judged from its content, or raise InvalidInput naming what is
    wrong. The name and the type the sender declared are not trusted (servicedesk.uploads)."""
    limit = settings.ATTACHMENT_MAX_BYTES
    if size > limit:
        raise InvalidInput(
            f"file: {filename!r} is {filesizeformat(size)}, larger than the limit of {filesizeformat(limit)}",
            field="file",
        )
    if size == 0:
        raise InvalidInput(f"file: {filename!r} is empty", field="file", )
    allowed = set(settings.ATTACHMENT_ALLOWED_TYPES)
    mime = sniff_content_type(upload, filename) if upload is not None else UNKNOWN_BINARY
    if mime not in allowed:
        what = ("of no type we recognise (binary content, or text that is not UTF-8)" if mime == UNKNOWN_BINARY
                else f"of type {mime}")
        raise InvalidInput(
            f"file: {filename!r} is {what}, which is not accepted "
            f"(accepted: {', '.join(sorted(allowed))})",
            field="file",
        )
    return mime


@transaction.atomic
def attachment_add(*, ticket, upload, by, entry: TimelineEntry | None = None, internal: bool = False) -> Attachment:
    """Store an uploaded file against a ticket after checking size and type."""
    filename = upload.name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1][:200]
    mime = attachment_validate(filename=filename, size=upload.size, upload=upload)
    attachment = Attachment(
        content_type=ContentType.objects.get_for_model(ticket),
        object_id=ticket.pk,
        entry=entry,
        filename=filename,
        mime_type=mime,
        size=upload.size,
        internal=internal,
        uploaded_by=by,
    )
    attachment.file.save(filename, upload, save=False)
    attachment.save()
    timeline_add(ticket=ticket, kind=TimelineEntry.Kind.SYSTEM, author=by, internal=internal,
                 body=f"Attached {filename}", data={"attachment_id": attachment.id})
    return attachment


# --- audit ----------------------------------------------------------------------------------------


def audit_record(
    *, actor, action: str, obj=None, changes: dict | None = None, object_repr: str | None = None
) -> AuditLog:
    if object_repr is None:
        object_repr = str(obj) if obj is not None else ""
    return AuditLog.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        content_type=ContentType.objects.get_for_model(obj) if obj is not None else None,
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=object_repr[:200],
        changes=changes or {},
    )


# --- erasure --------------------------------------------------------------------------------------


def ticket_model_for(number: str):
    """The concrete ticket model whose NUMBER_PREFIX starts `number` (INC0001001 -> Incident), found among
    the installed models, so the kernel needs no import of any practice app."""
    from django.apps import apps

    prefix = re.match(r"[A-Za-z]*", number or "").group(0).upper()
    for model in apps.get_models():
        if issubclass(model, Ticket) and model.NUMBER_PREFIX and model.NUMBER_PREFIX == prefix:
            return model
    known = sorted(m.NUMBER_PREFIX for m in apps.get_models() if issubclass(m, Ticket) and m.NUMBER_PREFIX)
    raise InvalidInput(f"number: {number!r} is not a ticket number (known prefixes: {', '.join(known)})",
                       field="number")


@transaction.atomic
def ticket_erase(*, number: str, by, reason: str) -> AuditLog:
    """Erase a ticket for data protection: the ticket, its timeline, its attachments and their files, the
    webhook deliveries about it, what other apps keep about it (their `registry.ticket_erase_hook`s: the
    email channel's mails), and the ticket's content in earlier audit rows (who did what and when stays).
    One transaction; the files go only once it commits. The audit row names the operator, the reason and
    the number, nothing else of the ticket."""
    if not (reason or "").strip():
        raise InvalidInput("reason: say why the ticket is erased (it goes into the audit trail)", field="reason")
    if by is None or not by.is_active or role_of(by) != Role.ADMIN:
        raise InvalidInput("by: only an active admin may erase a ticket", field="by")
    model = ticket_model_for(number)
    ticket = model.objects.select_for_update().filter(number=number.upper()).first()
    if ticket is None:
        raise InvalidInput(f"number: there is no {model._meta.verbose_name} {number.upper()}", field="number")
    content_type = ContentType.objects.get_for_model(model)
    ticket_id, number = ticket.pk, ticket.number
    attachments = Attachment.objects.filter(content_type=content_type, object_id=ticket_id)
    files = [name for name in attachments.values_list("file", flat=True) if name]
    counts = {"attachments": attachments.count()}
    attachments.delete()
    counts["timeline_entries"] = TimelineEntry.objects.filter(content_type=content_type, object_id=ticket_id).delete()[0]
    counts["watchers"] = Watcher.objects.filter(content_type=content_type, object_id=ticket_id).delete()[0]
    # What other apps keep about the ticket by id (the email channel's raw mails...): their hooks, in this
    # transaction (servicedesk.registry.ticket_erase_hook).
    kind = ticket_kind_of(ticket)
    counts["other_apps"] = sum(hook(kind, ticket_id) or 0 for hook in registry.erase_hooks)
    try:
        ticket.delete()
    except ProtectedError as error:
        blockers = ", ".join(sorted({str(o) for o in error.protected_objects})[:10])
        raise InvalidInput(f"number: {number} is still referenced by {blockers}", field="number") from error
    # Deliveries about the ticket name it at the top (ticket events) or under "ticket" (SLA escalations).
    counts["webhook_deliveries"] = WebhookDelivery.objects.filter(
        Q(payload__number=number) | Q(payload__ticket__number=number)).delete()[0]
    # Copies of the ticket kept for retries and replays: side effects about it (mail, webhooks, tasks) and
    # stored API responses. Matching the number in the stored JSON finds them whatever their shape.
    counts["outbox_messages"] = OutboxMessage.objects.filter(payload__icontains=number).delete()[0]
    counts["idempotency_keys"] = IdempotencyKey.objects.filter(response_body__icontains=number).delete()[0]
    # Earlier audit rows keep actor, action and time; their copy of the ticket's title and values goes.
    AuditLog.objects.filter(content_type=content_type, object_id=str(ticket_id)).update(
        object_repr=number, changes={"erased": True}
    )
    log = AuditLog.objects.create(
        actor=by, action="ticket.erased", content_type=content_type, object_id=str(ticket_id),
        object_repr=number, changes={"number": number, "reason": reason.strip(), **counts, "files": len(files)},
    )
    transaction.on_commit(lambda: _files_delete(files))
    return log


def _files_delete(names: list[str]) -> None:
    from django.core.files.storage import default_storage

    folders = set()
    for name in names:
        default_storage.delete(name)
        folders.add(name.rsplit("/", 1)[0])
    for folder in folders:  # attachments/<type>/<ticket id>/, empty now on the local file system
        try:
            os.rmdir(default_storage.path(folder))
        except (NotImplementedError, OSError):
            pass


# --- people ---------------------------------------------------------------------------------------


@transaction.atomic
def user_provision(
    *,
    username: str,
    role: str,
    password: str | None = None,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    teams: Iterable[str] = (),
    organisation: str | None = None,
    actor=None,
):
    """Create or update a user with exactly one role; idempotent (used by create_user and seed_demo)."""
    if role not in Role.values:
        raise InvalidInput(f"role must be one of {', '.join(Role.values)}, not {role!r}", field="role")
    if not username or not username.strip():
        raise InvalidInput("username must not be empty", field="username")
    User = get_user_model()
    groups = ensure_roles()
    user, created = User.objects.get_or_create(username=username)
    before = {"email": user.email, "role": None if created else str(_role_name(user))}
    if email is not None:
        user.email = email
    if first_name is not None:
        user.first_name = first_name
    if last_name is not None:
        user.last_name = last_name
    if password:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.is_staff = role in (Role.ADMIN, Role.MANAGER)
    user.is_superuser = role == Role.ADMIN
    user.save()
    user.groups.remove(*[g for name, g in groups.items() if name != role])
    user.groups.add(groups[role])
    profile, _ = Profile.objects.get_or_create(user=user)
    if organisation:
        profile.organisation, _ = Organisation.objects.get_or_create(name=organisation)
        profile.save(update_fields=["organisation"])
    for team_name in teams:
        team, _ = Team.objects.get_or_create(name=team_name)
        TeamMembership.objects.get_or_create(team=team, user=user)
        if role == Role.MANAGER and team.lead_id is None:
            team.lead = user
            team.save(update_fields=["lead"])
    if hasattr(user, "_sd_role"):
        del user._sd_role
    audit_record(actor=actor, action="user.created" if created else "user.updated", obj=user,
                 changes={"before": before, "after": {"email": user.email, "role": role}})
    return user, created


def _role_name(user):
    from servicedesk.roles import role_of

    return role_of(user)


# --- satisfaction ratings -------------------------------------------------------------------------


def _rating_score(score) -> int:
    if isinstance(score, bool):
        score = None
    try:
        value = int(str(score).strip())
    except (TypeError, ValueError):
        value = None
    if value is None or not 1 <= value <= 5:
        raise InvalidInput("score: give a whole number from 1 (poor) to 5 (excellent)", field="score")
    return value


@transaction.atomic
def rating_give(*, ticket, by, score, comment: str = "", now=None):
    """The requester rates a resolved ticket (any type whose model says `rateable()`): 1 to 5 and a comment.
    A second call within RATING_CHANGE_DAYS of the first changes the rating; after that it is kept as given.
    Written on the ticket's timeline (public: the requester sees it too, agents read it there)."""
    from datetime import timedelta

    from django.utils import timezone

    from servicedesk.errors import NotAllowed, TransitionNotAllowed
    from servicedesk.models import Rating

    score = _rating_score(score)
    comment = (comment or "").strip()
    if len(comment) > 2000:
        raise InvalidInput("comment: at most 2,000 characters", field="comment")
    if by is None or ticket.requester_id != by.id:
        raise NotAllowed(f"only the person who raised {ticket.number} can rate it")
    locked = type(ticket).objects.select_for_update(of=("self",)).get(id=ticket.id)
    rateable = getattr(locked, "rateable", None)
    if rateable is None or not rateable():
        raise TransitionNotAllowed(f"{locked.number} can be rated once it is resolved", field="status")
    now = now or timezone.now()
    content_type = ContentType.objects.get_for_model(locked)
    rating = Rating.objects.filter(content_type=content_type, object_id=locked.id).first()
    if rating is None:
        rating = Rating.objects.create(content_type=content_type, object_id=locked.id, number=locked.number,
                                       score=score, comment=comment, by=by, created_at=now, updated_at=now)
        old = None
    else:
        if now - rating.created_at > timedelta(days=settings.RATING_CHANGE_DAYS):
            raise TransitionNotAllowed(
                f"{locked.number} was rated more than {settings.RATING_CHANGE_DAYS} days ago: "
                "the rating can no longer change", field="score")
        if rating.score == score and rating.comment == comment:
            return rating  # a resent form changes nothing
        old = {"score": rating.score, "comment": rating.comment}
        rating.score, rating.comment, rating.updated_at = score, comment, now
        rating.save(update_fields=["score", "comment", "updated_at"])
    verb = "Rated" if old is None else "Changed the rating to"
    timeline_add(ticket=locked, kind=TimelineEntry.Kind.SYSTEM, author=by, internal=False,
                 body=f"{verb} {score}/5" + (f": {comment}" if comment else ""),
                 data={"event": "rating", "new": score, "old": old["score"] if old else None})
    audit_record(actor=by, action="rating.given" if old is None else "rating.changed", obj=locked,
                 changes={"score": {"old": old["score"] if old else None, "new": score}})
    return rating

