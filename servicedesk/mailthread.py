"""How mail about a ticket threads, in both directions: the ids and tags our outgoing mail carries, and which
ticket the ids and tags of an incoming mail name.

Every mail about one ticket says it answers the ticket's thread root, `<sd.incident.42.<hmac10>@<domain>>`
(In-Reply-To and References), so mail clients file them under one conversation, and a reply (whose
References keep the root and the Message-ID it answers, `<outbox.N.ts@domain>`) leads back to the ticket.
The root carries an HMAC of the kind and id keyed with SECRET_KEY: an id someone makes up never names a
ticket. Subjects carry the number tag, "[INC0001001]", for clients that drop the headers.

Pure helpers apart from two lookups: `thread_of` reads the outbox (one query) and `ticket_kind_of` the
registry. No practice app is imported.
"""

import hashlib
import hmac
import re
import urllib.parse

from django.conf import settings

REPLY_MARKER = "## Reply above this line ##"
OUR_HEADER = "X-Servicedesk-Ticket"

_ROOT = re.compile(r"^sd\.([a-z][a-z0-9_]*)\.(\d{1,18})\.([0-9a-f]{10})@(.+)$")
_OUTBOX = re.compile(r"^outbox\.(\d{1,18})\.(\d{1,12})@(.+)$")
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


def thread_of(message_ids: list[str]) -> tuple[str, int] | None:
    """The (kind, ticket id) that any of `message_ids` (In-Reply-To / References values, with or without <>)
    names: one of our thread roots whose HMAC checks out, else one of our outgoing mails' Message-IDs whose
    outbox message names its ticket (one query for all of them). None when none is ours."""
    domain = mail_domain().lower()
    outbox: list[tuple[int, int]] = []
    for raw in message_ids or ():
        value = _bare(raw)
        root = _ROOT.match(value)
        if root and root.group(4).lower() == domain:
            kind, ticket_id, signature = root.group(1), int(root.group(2)), root.group(3)
            if hmac.compare_digest(signature, _hmac10(kind, ticket_id)):
                return kind, ticket_id
            continue
        sent = _OUTBOX.match(value)
        if sent and sent.group(3).lower() == domain:
            outbox.append((int(sent.group(1)), int(sent.group(2))))
    if not outbox:
        return None
    from servicedesk.models import OutboxMessage

    found = {
        message_id: (created_at, thread)
        for message_id, created_at, thread in OutboxMessage.objects.filter(
            id__in={message_id for message_id, _ in outbox}, handler="email.send"
        ).values_list("id", "created_at", "payload__thread")
    }
    for message_id, stamp in outbox:  # the order the mail gave them
        created_at, thread = found.get(message_id, (None, None))
        # The timestamp must be the message's own: a guessed id of someone else's mail names nothing.
        if created_at is None or int(created_at.timestamp()) != stamp or not isinstance(thread, dict):
            continue
        if thread.get("kind") and thread.get("id") is not None:
            return str(thread["kind"]), int(thread["id"])
    return None


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
