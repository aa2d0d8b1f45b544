"""How mail about a ticket threads, in both directions: the ids and tags our outgoing mail carries, and which
ticket the ids and tags of an incoming mail name.

Every mail about one ticket says it answers the ticket's thread root, `<sd.incident.42.<hmac10>@<domain>>`
(In-Reply-To and References), so mail clients file them under one conversation, and a reply (whose
References keep the root and the Message-ID it answers, `<outbox.N.ts@domain>`) leads back to the ticket.
The root carries an HMAC of the kind and id keyed with SECRET_KEY: an id someone makes up never names a
ticket. Subjects carry the number tag, "[INC0001001]", for clients that drop the headers.

Mail to agents only (assignments, team alerts, SLA escalations, approval requests: `internal=True` in
servicedesk.notifications.email_enqueue) threads the same way, but its Message-ID says it is internal,
`<outbox.N.ts.internal@domain>`, and so does its outbox message: `thread_of` returns a ThreadRef whose
`internal` is True for a reply to it, which the email channel then records as an internal note, never as a
public reply mailed to the requester.

Public mail also answers the mail that started the ticket (`thread_origin`: its In-Reply-To, and first in
References), so the requester's client files our acknowledgement under their own sent mail, and its subject is
always "[NUMBER] <title>" (servicedesk.notifications), because Gmail and Outlook split a conversation whose
subjects differ.

Pure helpers apart from three lookups: `thread_of` reads the outbox (one query), `thread_origin` the ticket's
timeline (one query) and `ticket_kind_of` the registry. No practice app is imported.
"""

import hashlib
import hmac
import re
import urllib.parse
from typing import NamedTuple

from django.conf import settings

REPLY_MARKER = "## Reply above this line ##"
OUR_HEADER = "X-Servicedesk-Ticket"

_ROOT = re.compile(r"^sd\.([a-z][a-z0-9_]*)\.(\d{1,18})\.([0-9a-f]{10})@(.+)$")
_OUTBOX = re.compile(r"^outbox\.(\d{1,18})\.(\d{1,12})(\.internal)?@(.+)$")
_SAFE_ID = re.compile(r"[!-;=?-~]{1,900}")  # printable ASCII without <, > and spaces
_TAG = re.compile(r"\[([A-Z]{2,8}\d{4,12})\]")


def mail_domain() -> str:
    """The domain of our Message-IDs: the host of SITE_URL (else "servicedesk")."""
    return urllib.parse.urlsplit(settings.SITE_URL).hostname or "servicedesk"


def _hmac10(kind: str, ticket_id: int) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{kind}.{ticket_id}".encode(), hashlib.sha256).hexdigest()[:10]


def thread_root(kind: str, ticket_id: int) -> str:
    """The Message-ID every mail about this ticket answers (never sent itself: a stable anchor)."""
    return f"<sd.{kind}.{int(ticket_id)}.{_hmac10(kind, int(ticket_id))}@{mail_domain()}>"


def _bare(message_id: str) -> str:
    return (message_id or "").strip().strip("<>").strip()


class ThreadRef(NamedTuple):
    """The ticket an incoming mail's ids name, and whether the mail it answers was internal (sent to agents
    only): a reply to internal mail must not become a public reply."""

    kind: str
    ticket_id: int
    internal: bool


def thread_of(message_ids: list[str]) -> ThreadRef | None:
    """The ticket that `message_ids` (In-Reply-To first, then References; with or without <>) name, or None
    when none is ours.

    Our outgoing mails' Message-IDs decide when there are any: the first whose outbox message still exists
    names the ticket and says whether that mail was internal (its payload's thread); an internal mail's id
    says so itself (`<outbox.N.ts.internal@domain>`), so a reply to one stays internal after the outbox has
    purged the message (the ticket then comes from the root). The thread root, which every mail of a ticket
    carries in References, names the ticket but never makes a reply public by itself: only a bare root (no
    id of ours besides it) gives internal False. One query for all the outbox ids."""
    domain = mail_domain().lower()
    root: tuple[str, int] | None = None
    outbox: list[tuple[int, int, bool]] = []
    for raw in message_ids or ():
        value = _bare(raw)
        found = _ROOT.match(value)
        if found and found.group(4).lower() == domain:
            kind, ticket_id, signature = found.group(1), int(found.group(2)), found.group(3)
            if root is None and hmac.compare_digest(signature, _hmac10(kind, ticket_id)):
                root = (kind, ticket_id)
            continue
        sent = _OUTBOX.match(value)
        if sent and sent.group(4).lower() == domain:
            outbox.append((int(sent.group(1)), int(sent.group(2)), bool(sent.group(3))))
    if outbox:
        from servicedesk.models import OutboxMessage

        stored = {
            message_id: (created_at, thread)
            for message_id, created_at, thread in OutboxMessage.objects.filter(
                id__in={message_id for message_id, _, _ in outbox}, handler="email.send"
            ).values_list("id", "created_at", "payload__thread")
        }
        for message_id, stamp, marked_internal in outbox:  # the order the mail gave them: In-Reply-To first
            created_at, thread = stored.get(message_id, (None, None))
            # The timestamp must be the message's own: a guessed id of someone else's mail names nothing.
            if (created_at is not None and int(created_at.timestamp()) == stamp and isinstance(thread, dict)
                    and thread.get("kind") and thread.get("id") is not None):
                return ThreadRef(str(thread["kind"]), int(thread["id"]),
                                 bool(thread.get("internal")) or marked_internal)
            if marked_internal and root is not None:
                return ThreadRef(root[0], root[1], True)  # purged (or unknown): the id still says internal
    if root is not None:
        return ThreadRef(root[0], root[1], False)
    return None


def thread_origin(kind: str, ticket_id: int) -> str:
    """The Message-ID (with <>) of the first mail the ticket's timeline records (the mail that raised it, or
    the requester's first reply by mail), "" when none: our public mails answer it, so a mail client files
    them under the requester's own sent mail. One query on the timeline's ticket index."""
    from django.contrib.contenttypes.models import ContentType

    from servicedesk.errors import InvalidInput
    from servicedesk.models import TimelineEntry
    from servicedesk.registry import registry
    from servicedesk.services import ticket_model_for

    known = registry.ticket_kind_named(kind)
    if known is None or not known.prefix:
        return ""
    try:
        model = ticket_model_for(known.prefix)
    except InvalidInput:
        return ""
    value = (
        TimelineEntry.objects.filter(content_type=ContentType.objects.get_for_model(model), object_id=ticket_id,
                                     data__channel="email", data__has_key="message_id")
        .exclude(data__message_id="")
        .order_by("created_at", "id")
        .values_list("data__message_id", flat=True)
        .first()
    )
    value = _bare(value if isinstance(value, str) else "")
    # It came from someone's mail: only a plain id may go into our headers.
    return f"<{value}>" if _SAFE_ID.fullmatch(value) else ""


def subject_tag(number: str) -> str:
    return f"[{number}]"


def subject_tagged(subject: str, number: str) -> str:
    """`subject` with the ticket's tag in front, unless the tag is in it already."""
    tag = subject_tag(number)
    subject = subject or ""
    return subject if tag in subject else f"{tag} {subject}".strip()


def numbers_in_subject(subject: str) -> list[str]:
    """Every "[ABC0001234]"-style tag of a subject, in order (duplicates once), upper case inside."""
    seen: list[str] = []
    for number in _TAG.findall((subject or "").upper()):
        if number not in seen:
            seen.append(number)
    return seen


def ticket_kind_of(ticket) -> str:
    """The registered kind of a ticket instance ("incident", "request"), found by its number prefix among the
    registry's ticket kinds; a model no kind registers is named by its model name."""
    from servicedesk.registry import registry

    prefix = getattr(ticket, "NUMBER_PREFIX", "")
    kind = registry.ticket_kind_for_prefix(prefix) if prefix else None
    return kind.kind if kind is not None else ticket._meta.model_name
