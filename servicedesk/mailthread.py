"""How mail about a ticket threads, in both directions: the ids and tags our outgoing mail carries, and which
ticket the ids and tags of an incoming mail name.

Every mail about one ticket says it answers the ticket's thread root, `<sd.incident.42.<hmac10>@<domain>>`
(In-Reply-To and References), so mail clients file them under one conversation, and a reply (whose
References keep the root and the Message-ID it answers, `<outbox.N.ts@domain>`) leads back to the ticket.
The root carries an HMAC of the kind and id keyed with SECRET_KEY: an id someone makes up never names a
ticket. Subjects carry the number tag, "[INC0001001]", for clients that drop the headers.

Mail to agents only (assignments, team alerts, SLA escalations, approval requests: `internal=True` in
servicedesk.notifications.email_enqueue) has a thread root of its own, `<sd.incident.42.internal.<hmac10>@<domain>>`
(its HMAC covers "incident.42.internal"), and answers only that root: never the public root, never the mail that
raised the ticket. Its Message-ID says it is internal too, `<outbox.N.ts.rK.internal@domain>`, but relays (Amazon
SES) may rewrite Message-IDs, so the root a reply keeps in References is what carries the mark. `thread_of`
fails closed: when any id of a reply is internal (an internal root, or one of our internal mails), its
ThreadRef is internal, and the email channel records the reply as an internal note, never as a public reply
mailed to the requester. `mentions_internal` says whether any id carries our internal mark at all, even one that
no longer resolves (a purged outbox message).

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

# Groups: kind, id, ".internal" or None, hmac10, domain.
_ROOT = re.compile(r"^sd\.([a-z][a-z0-9_]*)\.(\d{1,18})(\.internal)?\.([0-9a-f]{10})@(.+)$")
# Groups: outbox id, created_at (unix seconds), ".internal" or None, domain. ".rK" (the recipient's index: each
# recipient gets a mail of its own) is optional, so the ids of mail sent before it still resolve.
_OUTBOX = re.compile(r"^outbox\.(\d{1,18})\.(\d{1,12})(?:\.r\d{1,6})?(\.internal)?@(.+)$")
_SAFE_ID = re.compile(r"[!-;=?-~]{1,900}")  # printable ASCII without <, > and spaces
_TAG = re.compile(r"\[([A-Z]{2,8}\d{4,12})\]")


def mail_domain() -> str:
    """The domain of our Message-IDs: the host of SITE_URL (else "servicedesk")."""
    return urllib.parse.urlsplit(settings.SITE_URL).hostname or "servicedesk"


def _hmac10(kind: str, ticket_id: int, internal: bool = False) -> str:
    signed = f"{kind}.{ticket_id}.internal" if internal else f"{kind}.{ticket_id}"
    return hmac.new(settings.SECRET_KEY.encode(), signed.encode(), hashlib.sha256).hexdigest()[:10]


def thread_root(kind: str, ticket_id: int, internal: bool = False) -> str:
    """The Message-ID every mail about this ticket answers (never sent itself: a stable anchor). Internal mail
    (to agents only) answers a root of its own, which says so and is signed as such: a reply that keeps only
    the root (a relay rewrote our Message-ID) is still known as a reply to internal mail."""
    ticket_id = int(ticket_id)
    marker = ".internal" if internal else ""
    return f"<sd.{kind}.{ticket_id}{marker}.{_hmac10(kind, ticket_id, internal)}@{mail_domain()}>"


def _bare(message_id: str) -> str:
    return (message_id or "").strip().strip("<>").strip()


class ThreadRef(NamedTuple):
    """The ticket an incoming mail's ids name; whether the mail it answers was internal (sent to agents only: a
    reply to internal mail must not become a public reply); and `via`, how the ticket was found: "outbox"
    (one of our mails' Message-IDs, which the outbox still holds) or "root" (a signed thread root)."""

    kind: str
    ticket_id: int
    internal: bool
    via: str


def _ours(message_ids: list[str]) -> tuple[list[tuple[str, int, bool]], list[tuple[int, int, bool]]]:
    """The signed roots (kind, id, internal) and the outbox ids (id, stamp, marked internal) among
    `message_ids` that are on our domain, in their order."""
    domain = mail_domain().lower()
    roots: list[tuple[str, int, bool]] = []
    outbox: list[tuple[int, int, bool]] = []
    for raw in message_ids or ():
        value = _bare(raw)
        found = _ROOT.match(value)
        if found and found.group(5).lower() == domain:
            kind, ticket_id, internal = found.group(1), int(found.group(2)), bool(found.group(3))
            if hmac.compare_digest(found.group(4), _hmac10(kind, ticket_id, internal)):
                roots.append((kind, ticket_id, internal))
            continue
        sent = _OUTBOX.match(value)
        if sent and sent.group(4).lower() == domain:
            outbox.append((int(sent.group(1)), int(sent.group(2)), bool(sent.group(3))))
    return roots, outbox


def mentions_internal(message_ids: list[str]) -> bool:
    """Whether any of `message_ids` carries our internal mark on our domain: an internal root (signed or not)
    or an internal outbox id, even one the outbox has purged or that never named a ticket. A reply that
    answers internal mail must never reach the requester, even when `thread_of` cannot tell which ticket it
    is about (no root in References, the outbox message purged) and the subject's tag decides. No query."""
    domain = mail_domain().lower()
    for raw in message_ids or ():
        value = _bare(raw)
        found = _ROOT.match(value)
        if found and found.group(3) and found.group(5).lower() == domain:
            return True
        sent = _OUTBOX.match(value)
        if sent and sent.group(3) and sent.group(4).lower() == domain:
            return True
    return False


def thread_of(message_ids: list[str]) -> ThreadRef | None:
    """The ticket that `message_ids` (In-Reply-To first, then References; with or without <>) name, or None
    when none is ours.

    The ticket: the first of our outgoing mails' Message-IDs whose outbox message still exists (its payload's
    thread; via "outbox"), else the first signed thread root, public or internal (via "root").
    Internal FAILS CLOSED: the reply is internal when any of its ids is internal -- a signed internal root,
    a still-stored internal mail, or an id of ours carrying the internal mark (`mentions_internal`, so a
    purged one counts) -- whatever the order; a public id never outweighs an internal one. One query for all
    the outbox ids."""
    roots, outbox = _ours(message_ids)
    internal = mentions_internal(message_ids) or any(marked for _, _, marked in roots)
    found: tuple[str, int] | None = None
    if outbox:
        from servicedesk.models import OutboxMessage

        stored = {
            message_id: (created_at, thread)
            for message_id, created_at, thread in OutboxMessage.objects.filter(
                id__in={message_id for message_id, _, _ in outbox}, handler="email.send"
            ).values_list("id", "created_at", "payload__thread")
        }
        for message_id, stamp, _ in outbox:  # the order the mail gave them: In-Reply-To first
            created_at, thread = stored.get(message_id, (None, None))
            # The timestamp must be the message's own: a guessed id of someone else's mail names nothing.
            if (created_at is not None and int(created_at.timestamp()) == stamp and isinstance(thread, dict)
                    and thread.get("kind") and thread.get("id") is not None):
                internal = internal or bool(thread.get("internal"))
                if found is None:
                    found = (str(thread["kind"]), int(thread["id"]))
        if found is not None:
            return ThreadRef(found[0], found[1], internal, "outbox")
    if roots:
        return ThreadRef(roots[0][0], roots[0][1], internal, "root")
    return None


def thread_origin(kind: str, ticket_id: int) -> str:
    """The Message-ID (with <>) of the mail that raised the ticket, "" when it was not raised by mail: our
    public mails answer it, so the requester's client files them under their own sent mail. Only the public
    "created" entry counts (data event "created", channel "email", a message_id): never a later reply by mail,
    and never an internal entry, whose id is an agent's (their mail host) and must not reach the requester.
    One query on the timeline's ticket index."""
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
                                     internal=False, data__event="created", data__channel="email",
                                     data__has_key="message_id")
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
