"""Inbound mail: store it as it arrived, then decide once what it becomes.

    inbound_store(mailbox=, raw=, source=)   # IMAP poll / import_email: row + outbox "email.inbound", one commit
    inbound_process(message_id=)             # the worker (or import_email in-process): decide and write
    inbound_retry(message_id=, by=)          # admin "Process again" on a failed or ignored message

Processing claims the row (SELECT ... FOR UPDATE SKIP LOCKED, state new only), so a second delivery of the outbox
message, a relay and import_email never act on one mail twice. The decision, in order:

 0. too large (EMAIL_INBOUND_MAX_BYTES): kept, ignored;
 1. duplicate: a mail with the same Message-ID was already processed (the same mail copied to two mailboxes, or
    piped and polled): ignored. An ignored copy does not count: another mailbox's policy may accept the mail;
 2. loops and noise: auto-replies, bounces, bulk and list mail, our own notifications (X-Servicedesk-Ticket)
    and mail from our own addresses are ignored and never answered -- nothing here queues any mail;
 3. who may write: the mailbox's policy (anyone, known users, domains); an unknown sender gets a requester
    account when the mailbox says so;
 4. rate limit per sender and hour (mails that became tickets or replies);
 5. a reply (our Message-IDs in In-Reply-To/References, else a number tag in the subject) by someone who may
    reply to a ticket that still takes replies becomes a public comment; anything else opens a ticket
    ("Follow-up to INC...: " and the mail's new text when it named one). Staff are believed only through our
    Message-IDs (a number tag is easy to guess, a From easy to forge): a staff mail naming a ticket by its
    subject tag alone is ignored. A staff mail is a public reply only when it answers one of our public mails
    (thread_of: not internal, via "outbox"); one that answers agent-only mail, or names the ticket by its
    thread root alone, becomes an internal note and its author is told why ("mail_kept_internal"). Anyone
    else's answer to agent-only mail (an approver's "Approved") is ignored: no comment, no ticket;
 6. a new ticket of the kind the mailbox creates, through the kernel registry; Cc'd people become watchers
    (at most EMAIL_INBOUND_MAX_WATCHERS per mail; the rest are named in the row's reason).

Anything raised while deciding or writing rolls back to a savepoint and marks the mail failed with the error
(the raw mail stays); a failed or ignored mail is processed again only through inbound_retry. A lost database
connection or a deadlock is not the mail's fault (db_trouble): it is raised, so the outbox retries it later.

Nothing a sender writes can keep a mail from being stored: what is stored from its headers and text has been
through parsing.clean_text (no NUL), Message-IDs are cut to MESSAGE_ID_MAX characters (the index's row size),
and when the database refuses the row anyway, inbound_store_safely keeps the raw bytes as a failed row.
"""

import logging
import mimetypes
import re
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.parser import BytesHeaderParser
from email.utils import parseaddr

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from email_channel.models import InboundMessage, Mailbox
from email_channel.parsing import clean_text
from servicedesk.errors import InvalidInput
from servicedesk.locks import advisory_xact_lock
from servicedesk.outbox import outbox_enqueue

log = logging.getLogger(__name__)

INBOUND_HANDLER = "email.inbound"
State = InboundMessage.State

# "Re:", "Fwd:", German "AW:"/"WG:", Nordic "SV:", Dutch "Antw:", French "TR:", with counters like "Re[2]:".
_PREFIXES = re.compile(r"^\s*(?:(?:re|fwd?|aw|wg|sv|antw|tr)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_USERNAME_CHARS = re.compile(r"[^\w.@+-]")
# Stored Message-IDs are cut here: 4 bytes a character at most, so the btree index always takes them. A real
# Message-ID is far shorter; two made-up ones alike in their first 250 characters count as one.
MESSAGE_ID_MAX = 250
# SQLSTATE classes of the database's own trouble, not the mail's: 08 connection, 40 rollback (deadlock,
# serialization), 53 insufficient resources, 55 lock not available, 57 operator intervention, 58 system.
_DB_TROUBLE = {"08", "40", "53", "55", "57", "58"}


class Decided(Exception):  # noqa: N818 - not an error: how a rule says "ignore this mail, for this reason"
    """`kind`/`ticket`: the ticket the ignored mail named (kept on the row, so erasing that ticket finds the
    mail); `erased`: the mail is a copy of one erased with that ticket number (the row is scrubbed too)."""

    def __init__(self, reason: str, *, kind=None, ticket=None, erased: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.kind, self.ticket, self.erased = kind, ticket, erased


# The reason of a mail scrubbed because its ticket was erased (email_channel.plugin.inbound_mail_forget).
ERASED = "erased with "


def inbound_erased(message: InboundMessage) -> bool:
    """Whether the row is the tombstone of a mail erased with its ticket: no bytes, no sender, no subject;
    only its Message-ID (for dedupe) and its state are kept."""
    return message.reason.startswith(ERASED) and not message.size


def tombstone_update(reason) -> dict:
    """The UPDATE that turns stored mails into tombstones (an erasure, retention removing their ticket): their
    content goes, the Message-ID and the state stay, `reason` (text or an expression) says why; `raw_purged_at`
    is stamped (an earlier date kept), so retention's raw-mail rule never reads or archives a tombstone."""
    return {"raw": b"", "size": 0, "subject": "", "from_address": "", "error": "", "entry_id": None,
            "raw_purged_at": Coalesce("raw_purged_at", Value(timezone.now())), "reason": reason}


def inbound_scrub(message: InboundMessage, *, reason: str, now=None) -> None:
    """Forget a mail's content on the instance (the caller saves): what is left is a tombstone, stamped
    `raw_purged_at` as `tombstone_update` stamps them (retention's raw-mail rule never reads one)."""
    message.raw, message.size, message.subject, message.from_address = b"", 0, "", ""
    message.reason, message.error = reason[:300], ""
    message.raw_purged_at = message.raw_purged_at or now or timezone.now()


def db_trouble(exc: BaseException) -> bool:
    """Whether `exc` is the database's trouble (connection lost, deadlock, shutdown, disk full): the same mail
    will go through later, so it is raised and retried. Not what the mail itself caused: a value PostgreSQL
    refuses, an index row too large (SQLSTATE 54000, which Django reports as an OperationalError as well), a
    constraint, or a bug -- retrying those fails the same way for ever."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    code = getattr(cause, "pgcode", None) or getattr(cause, "sqlstate", None)
    if not code:
        return True  # no answer from the server at all: the connection broke
    return code[:2] in _DB_TROUBLE


# --- storing ---------------------------------------------------------------------------------------------


def _header_peek(raw: bytes) -> tuple[str, str, str]:
    """Message-ID (without <>), sender address and subject, read from the headers alone for the admin list;
    never raises (processing parses the whole mail and says what is wrong with it)."""
    try:
        headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
        message_id = str(headers.get("Message-ID", "") or "").strip().strip("<>").strip()
        from_address = parseaddr(str(headers.get("From", "") or ""))[1].strip().lower()
        subject = " ".join(str(headers.get("Subject", "") or "").split())
    except Exception:  # noqa: BLE001 - a header the stdlib cannot read leaves the field blank
        return "", "", ""
    return (clean_text(message_id)[:MESSAGE_ID_MAX], clean_text(from_address)[:320],
            " ".join(clean_text(subject).split())[:998])


def _uid_taken(mailbox: Mailbox, uidvalidity, uid) -> bool:
    return uid is not None and InboundMessage.objects.filter(mailbox=mailbox, uidvalidity=uidvalidity,
                                                             uid=uid).exists()


def inbound_store(*, mailbox: Mailbox, raw: bytes, source: str, uidvalidity: int | None = None,
                  uid: int | None = None, size: int | None = None) -> InboundMessage | None:
    """Keep one mail and queue its processing, in one transaction: the mail is never lost once stored, and
    the worker processes it exactly once. None when this (mailbox, uidvalidity, uid) is already stored (an IMAP
    poll that was cut off before it moved its mark on). `size`: the mail's real size when `raw` is only its
    header (the IMAP poll does not fetch a mail over EMAIL_INBOUND_MAX_BYTES whole)."""
    message_id, from_address, subject = _header_peek(raw)
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: the unique (mailbox, uidvalidity, uid) may refuse the row
                message = InboundMessage.objects.create(
                    mailbox=mailbox, source=source, uidvalidity=uidvalidity, uid=uid, message_id=message_id,
                    from_address=from_address, subject=subject, raw=bytes(raw),
                    size=len(raw) if size is None else size,
                )
        except IntegrityError:
            if not _uid_taken(mailbox, uidvalidity, uid):
                raise  # another constraint: not "already stored"
            return None
        outbox_enqueue(INBOUND_HANDLER, {"message": message.id})
    return message


def inbound_store_failed(*, mailbox: Mailbox, raw: bytes, source: str, error: str, uidvalidity: int | None = None,
                         uid: int | None = None, size: int | None = None) -> InboundMessage | None:
    """Keep a mail inbound_store could not take as a bare row: raw bytes, state failed and the error, no
    header fields, nothing queued. One poison mail then never stops a mailbox (the poll moves its mark past
    it) and the pipe's mail server does not retry it for ever; "Process again" reads it from its bytes. None
    when this (mailbox, uidvalidity, uid) is stored already."""
    try:
        with transaction.atomic():
            return InboundMessage.objects.create(
                mailbox=mailbox, source=source, uidvalidity=uidvalidity, uid=uid, raw=bytes(raw),
                size=len(raw) if size is None else size,
                state=State.FAILED, error=clean_text(error),
            )
    except IntegrityError:
        if not _uid_taken(mailbox, uidvalidity, uid):
            raise
        return None


def inbound_store_safely(*, mailbox: Mailbox, raw: bytes, source: str, uidvalidity: int | None = None,
                         uid: int | None = None, size: int | None = None) -> InboundMessage | None:
    """inbound_store, or -- when the database refused the row for something in the mail -- inbound_store_failed.
    The database's own trouble (db_trouble) is raised: the caller tries the same mail again later."""
    try:
        return inbound_store(mailbox=mailbox, raw=raw, source=source, uidvalidity=uidvalidity, uid=uid, size=size)
    except Exception as exc:
        if db_trouble(exc):
            raise
        log.exception("email: mail for mailbox %s could not be stored as it came; keeping it as failed", mailbox.id)
        return inbound_store_failed(mailbox=mailbox, raw=raw, source=source, uidvalidity=uidvalidity, uid=uid,
                                    error=f"not stored as it came: {exc.__class__.__name__}: {exc}", size=size)


# --- processing ------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    action: str
    ticket_kind: str
    ticket: object
    entry_id: int | None
    note: str = ""  # kept in the row's reason (e.g. Cc addresses over the watcher limit)


def inbound_process(*, message_id: int, now=None) -> InboundMessage:
    """Decide what the stored mail becomes and do it; a mail not new any more (or claimed by another process
    right now) is returned as it is, so calling this twice changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        message = (InboundMessage.objects.select_for_update(skip_locked=True, of=("self",))
                   .select_related("mailbox").filter(id=message_id, state=State.NEW).first())
        if message is None:
            return InboundMessage.objects.get(id=message_id)
        message.attempts += 1
        message.processed_at = now
        try:
            with transaction.atomic():  # a savepoint: a failure undoes every write of this mail, keeps the row
                outcome = _decide(message, now=now)
        except Decided as decided:
            message.state, message.reason, message.error = State.IGNORED, decided.reason[:300], ""
            # The ticket it named, if any: erasing that ticket then finds this mail too (plugin.py).
            found = decided.ticket
            message.action, message.entry_id = "", None
            message.ticket_kind = decided.kind.kind if found is not None else ""
            message.ticket_id = found.id if found is not None else None
            message.ticket_number = found.number if found is not None else ""
            if decided.erased:
                inbound_scrub(message, reason=f"{ERASED}{decided.erased}: {decided.reason}", now=now)
        except Exception as exc:
            if db_trouble(exc):
                raise  # the database's trouble, not the mail's: the outbox retries the whole message
            log.exception("email: inbound message %s failed", message.id)
            message.state, message.reason = State.FAILED, ""
            message.error = clean_text(f"{exc.__class__.__name__}: {exc}")
        else:
            message.state, message.reason, message.error = State.PROCESSED, outcome.note[:300], ""
            message.action = outcome.action
            message.ticket_kind = outcome.ticket_kind
            message.ticket_id = outcome.ticket.id
            message.ticket_number = outcome.ticket.number
            message.entry_id = outcome.entry_id
        message.save(update_fields=["state", "reason", "error", "attempts", "processed_at", "action", "ticket_kind",
                                    "ticket_id", "ticket_number", "entry_id", "message_id", "from_address",
                                    "subject", "raw", "size", "raw_purged_at"])
    return message


RETRYABLE = (State.FAILED, State.IGNORED)


@transaction.atomic
def inbound_retry(*, message_id: int, by) -> InboundMessage:
    """Process a failed or ignored mail again (after its mailbox's configuration was fixed, or a rate-limited
    sender's hour passed): back to new, queued again; it then goes through every rule once more. A new or
    processed mail is left as it is (a processed one made its ticket or reply already)."""
    from servicedesk.services import audit_record

    message = InboundMessage.objects.select_for_update().get(id=message_id)
    if message.state not in RETRYABLE or inbound_erased(message):
        return message  # an erased mail's tombstone has nothing left to process, and must keep its Message-ID
    before = {"state": message.state, "error": message.error, "reason": message.reason}
    message.state, message.error, message.reason = State.NEW, "", ""
    message.save(update_fields=["state", "error", "reason"])
    audit_record(actor=by, action="inboundmessage.retried", obj=message, changes=before)
    outbox_enqueue(INBOUND_HANDLER, {"message": message.id})
    return message


def _decide(message: InboundMessage, *, now) -> Outcome:
    """Apply the rules in order; raise Decided to ignore the mail."""
    from email_channel.parsing import mail_parse

    mailbox = message.mailbox
    if inbound_erased(message):  # stored, then scrubbed by an erasure before it was processed
        number = message.reason[len(ERASED):].split(":", 1)[0].strip()
        raise Decided("stored before the erasure, never processed", erased=number)
    limit = settings.EMAIL_INBOUND_MAX_BYTES
    raw = bytes(message.raw)
    if message.size > len(raw):  # the IMAP poll kept only the header of a mail over the limit of its day
        raise Decided(f"too large: {message.size} bytes, only its header was read (limit {limit}); the whole mail "
                      f"stays on the IMAP server" + (f" (UID {message.uid})" if message.uid else ""))
    if message.size > limit:
        raise Decided(f"too large: {message.size} bytes (limit {limit})")
    parsed = mail_parse(raw)  # every string already through clean_text
    message.message_id = parsed.message_id[:MESSAGE_ID_MAX]
    message.from_address = parsed.from_address[:320]
    message.subject = parsed.subject[:998]

    _check_duplicate(message)
    _check_noise(parsed, raw)
    sender_address = parsed.from_address
    if not sender_address:
        raise Decided("no sender address")
    # One sender's mails one at a time: the rate limit counts what committed, and an account is made once.
    advisory_xact_lock(f"email-sender:{sender_address}")
    sender = _sender_known(sender_address)
    _check_accepted(mailbox, sender_address, sender)
    _check_rate(mailbox, message, now=now)
    copied, over = _cc_wanted(parsed, sender_address)
    # Accounts for new addresses (the sender's, the copied people's) are made under a lock per address, taken
    # here in one sorted batch before any ticket row is locked: two mails naming one new address make one
    # account, and no two mails can wait for each other's locks.
    _account_locks(([sender_address] if sender is None else []) + copied)
    if sender is None:
        sender = _account_create(sender_address, parsed.from_name)

    kept, refused = _attachments(parsed.parts)
    data = {"channel": "email", "mail": message.id, "message_id": parsed.message_id}
    found = _thread(parsed)
    kind, ticket, named = found.kind, found.ticket, found.named
    keep_internal = ""  # why a staff mail becomes an internal note instead of a public reply
    if ticket is not None:
        from servicedesk.roles import is_staff_role

        staff = is_staff_role(sender)
        if staff and not found.by_headers:
            raise Decided(f"staff reply not taken: the subject tag [{named}] alone does not name a ticket for "
                          f"staff; reply to one of our mails about it (In-Reply-To/References)",
                          kind=kind, ticket=ticket)
        if found.internal and not staff:
            raise Decided(ANSWER_TO_INTERNAL, kind=kind, ticket=ticket)
        if staff:
            keep_internal = _kept_internal_reason(found)
    elif found.internal:  # it answers agent-only mail whose ticket is gone from the outbox and the headers
        raise Decided(ANSWER_TO_INTERNAL)
    if ticket is not None and _accepts_reply(kind, ticket) and _may_reply(ticket, sender):
        from email_channel.parsing import reply_text

        body = _with_refused(reply_text(parsed.text).strip(), refused)
        if not body and not kept:
            raise Decided("empty reply", kind=kind, ticket=ticket)
        if not keep_internal:
            entry = kind.reply(ticket=ticket, author=sender, body=body, files=kept, data=data)
            return Outcome("replied", kind.kind, ticket, getattr(entry, "id", None))
        # Staff mail that may not be desk mail to the requester stays among agents, and its author learns why.
        entry = kind.reply(ticket=ticket, author=sender, body=body, files=kept, data=data, internal=True)
        _kept_internal_notice(kind, ticket, sender, keep_internal)
        return Outcome("replied", kind.kind, ticket, getattr(entry, "id", None), note=f"internal note: {keep_internal}")

    outcome = _ticket_create(mailbox, parsed, sender=sender, files=kept, refused=refused, data=data,
                             named=named, copied=copied)
    if over:
        limit = settings.EMAIL_INBOUND_MAX_WATCHERS
        outcome.note = (f"Cc: {len(over)} more address{'' if len(over) == 1 else 'es'} not made watchers (limit "
                        f"{limit}): {', '.join(over)}")[:300]
    return outcome


ANSWER_TO_INTERNAL = ("an answer to a mail for agents only: approvals are decided with the mail's links or on "
                      "the portal")


def _kept_internal_reason(found: "Thread") -> str:
    """"" when a staff mail is a public reply: it answers one of our public mails (R1/R2: the thread says
    public AND one of our sent Message-IDs says so). Else why it is kept as an internal note."""
    if found.internal:
        return "it answers a mail for agents only"
    if found.via != "outbox":
        return ("it answers none of our mails to the requester's side (only the ticket's conversation), so it "
                "is not sure to be meant for them")
    return ""


def _kept_internal_notice(kind, ticket, author, reason: str) -> None:
    """Tell a staff member that their mail was added as an internal note, and why (template
    "mail_kept_internal"); internal mail itself, so answering it adds another note, never a public reply."""
    from servicedesk.notifications import email_enqueue

    if not author.email:
        return
    brief = kind.brief(ticket)
    email_enqueue(template="mail_kept_internal", to=[author.email], thread=ticket, internal=True,
                  context={"ticket": {"number": ticket.number, "title": brief.title, "url": brief.url},
                           "reason": reason})


def _check_duplicate(message: InboundMessage) -> None:
    """Only a processed copy makes a mail a duplicate: an ignored copy (another mailbox's policy, a rate limit)
    must not keep a mailbox that accepts the mail from taking it."""
    if not message.message_id:
        return
    # Two copies of one mail (two mailboxes, pipe and poll) processed at once: the second waits here for the
    # first to commit, then sees it.
    advisory_xact_lock(f"email:{message.message_id}")
    first = (InboundMessage.objects.filter(message_id=message.message_id, state=State.PROCESSED)
             .exclude(id=message.id).order_by("id").values_list("id", flat=True).first())
    # A copy of a mail erased with its ticket (a UIDVALIDITY re-read, another mailbox) is refused whatever the
    # erased row's state, and is scrubbed as well: the erased ticket must not come back from its mail.
    erased = (InboundMessage.objects.filter(message_id=message.message_id, reason__startswith=ERASED, size=0)
              .exclude(id=message.id).order_by("id").values_list("id", "reason").first())
    if erased is not None:
        number = erased[1][len(ERASED):].split(":", 1)[0].strip()
        raise Decided(f"duplicate of message #{erased[0]}", erased=number)
    if first is not None:
        raise Decided(f"duplicate of message #{first}")


def our_addresses() -> set[str]:
    """Every address our own mail comes from: the mailboxes', DEFAULT_FROM_EMAIL's and EMAIL_REPLY_TO's."""
    ours = {address.lower() for address in Mailbox.objects.values_list("address", flat=True)}
    for value in (settings.DEFAULT_FROM_EMAIL, getattr(settings, "EMAIL_REPLY_TO", "")):
        address = parseaddr(value or "")[1].strip().lower()
        if address:
            ours.add(address)
    return ours


def _check_noise(parsed, raw: bytes) -> None:
    """Machine mail and our own mail are never answered and never open a ticket: that is how loops start."""
    from servicedesk.mailthread import OUR_HEADER

    if parsed.auto:
        raise Decided(f"{parsed.auto}: machine mail is not answered")
    try:
        ours = BytesHeaderParser(policy=policy.compat32).parsebytes(raw).get(OUR_HEADER)
    except Exception:  # noqa: BLE001 - headers mail_parse could read but this parser cannot: not ours
        ours = None
    if ours is not None:
        raise Decided("one of our own notifications")
    if parsed.from_address in our_addresses():
        raise Decided(f"from our own address {parsed.from_address}")


def _sender_known(address: str):
    """The account with this e-mail address (an active one first), or None."""
    return (get_user_model().objects.filter(email__iexact=address).order_by("-is_active", "id").first())


def _domain_ok(mailbox: Mailbox, address: str) -> bool:
    domain = address.rsplit("@", 1)[-1].lower()
    return any(domain == d or domain.endswith("." + d) for d in mailbox.domain_list())


def _check_accepted(mailbox: Mailbox, address: str, sender) -> None:
    if sender is not None and not sender.is_active:
        raise Decided("sender not accepted: the account is disabled")
    if mailbox.accept == Mailbox.Accept.DOMAINS and not _domain_ok(mailbox, address):
        raise Decided(f"sender not accepted: domain {address.rsplit('@', 1)[-1]} is not one of the mailbox's")
    if sender is None and (mailbox.accept == Mailbox.Accept.KNOWN or not mailbox.create_accounts):
        raise Decided("sender not accepted: unknown address")


def _check_rate(mailbox: Mailbox, message: InboundMessage, *, now) -> None:
    limit = mailbox.rate_limit_per_hour
    if not limit:
        return
    # Through the (from_address, received_at) index; only mails that became tickets or replies count.
    count = (InboundMessage.objects.filter(from_address=message.from_address, received_at__gte=now - timedelta(hours=1),
                                           state=State.PROCESSED).exclude(id=message.id).count())
    if count >= limit:
        raise Decided(f"rate limited: {count} mails from {message.from_address} in the last hour (limit {limit})")


def _names(display: str) -> tuple[str, str]:
    display = " ".join((display or "").split())
    if "," in display:  # "Doe, Jane"
        last, _, first = display.partition(",")
        return first.strip()[:150], last.strip()[:150]
    first, _, last = display.rpartition(" ") if " " in display else (display, "", "")
    return first.strip()[:150], last.strip()[:150]


def _account_locks(addresses) -> None:
    """Lock each address for account creation, in sorted order (the same order in every mail: no deadlock)."""
    for address in sorted({address.lower() for address in addresses}):
        advisory_xact_lock(f"email-account:{address}")


_USERNAME_TRIES = 100


def _account_create(address: str, display_name: str):
    """A requester account for a new address (the caller holds its _account_locks): username from the address
    (made unique), names from the display name, no usable password (they set one through "Forgot password" if
    they want the portal). An address that got an account meanwhile gets that one.

    Never an upsert: the user is INSERTed in a savepoint, and a username someone took between the check and the
    insert (an admin, another mail) moves on to the next suffix. An existing account's email, role, groups and
    flags are never touched -- a mail must not merge two people or demote an admin."""
    from django.contrib.auth.models import Group

    from servicedesk.models import Profile
    from servicedesk.roles import Role
    from servicedesk.services import audit_record

    existing = _sender_known(address)
    if existing is not None:
        return existing
    User = get_user_model()
    base = _USERNAME_CHARS.sub("", address.split("@", 1)[0])[:140] or "user"
    first, last = _names(display_name)
    candidates = (base if n == 1 else f"{base}{n}" for n in range(1, _USERNAME_TRIES + 1))
    for username in candidates:
        if User.objects.filter(username__iexact=username).exists():
            continue
        user = User(username=username, email=address, first_name=first, last_name=last)
        user.set_unusable_password()
        try:
            with transaction.atomic():  # a savepoint: a username taken meanwhile refuses only this insert
                user.save(force_insert=True)
        except IntegrityError:
            continue
        break
    else:
        raise InvalidInput(f"no free username for {address} after {_USERNAME_TRIES} tries", field="from")
    # The role's group exists since migrate (servicedesk.roles.ensure_roles on post_migrate); rewriting every
    # role's permissions for each new account, as ensure_roles does, cost ~65 ms a mail (bench_email).
    user.groups.add(Group.objects.get_or_create(name=Role.REQUESTER.value)[0])
    Profile.objects.get_or_create(user=user)
    audit_record(actor=None, action="user.created", obj=user,
                 changes={"before": {"email": "", "role": None},
                          "after": {"email": address, "role": Role.REQUESTER.value}, "via": "email"})
    return user


def _attachments(parts) -> tuple[list[ContentFile], list[str]]:
    """The parts the attachment rules accept, as files; the others as "name (why)" for the body."""
    kept, refused = [], []
    for index, part in enumerate(parts, start=1):
        filename = _part_name(part, index)
        upload = ContentFile(part.payload, name=filename)
        try:
            from servicedesk.services import attachment_validate

            attachment_validate(filename=filename, size=upload.size, upload=upload)
        except InvalidInput:
            if upload.size > settings.ATTACHMENT_MAX_BYTES:
                why = "too large"
            elif upload.size == 0:
                why = "empty"
            else:
                why = "type not accepted"
            refused.append(f"{filename} ({why})")
            continue
        kept.append(upload)
    return kept, refused


def _part_name(part, index: int) -> str:
    name = (part.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name:
        extension = mimetypes.guess_extension(part.content_type or "") or ".bin"
        name = f"{'image' if part.inline else 'attachment'}-{index}{extension}"
    return name[:200]


def _with_refused(body: str, refused: list[str]) -> str:
    if not refused:
        return body
    line = f"Not kept: {', '.join(refused)}"
    return f"{body}\n\n{line}" if body else line


@dataclass(frozen=True)
class Thread:
    kind: object = None  # the TicketKind
    ticket: object = None
    named: str = ""  # the number the mail named, even when the ticket cannot take its reply
    by_headers: bool = False  # named by our Message-IDs (In-Reply-To/References), not by a subject tag
    internal: bool = False  # the mail it answers went to agents only (or one of its ids says so)
    via: str = ""  # how the headers named it: "outbox" (one of our sent mails) or "root" (the thread root only)


def _thread(parsed) -> Thread:
    """The ticket this mail answers: our Message-IDs first (servicedesk.mailthread.thread_of; its answer says
    whether the thread is internal and whether one of our sent mails named it), then the subject's number
    tags. Failing closed: when any of the ids carries our internal marker (mentions_internal, even one the
    outbox has purged), the thread counts as internal whatever named the ticket. Thread() when nothing names
    one of ours (internal=True then still says it answered agent-only mail)."""
    from servicedesk.mailthread import mentions_internal, numbers_in_subject, thread_of
    from servicedesk.registry import registry
    from servicedesk.services import ticket_model_for

    ids = [*parsed.in_reply_to, *parsed.references]
    hidden = mentions_internal(ids)
    ref = thread_of(ids)
    if ref is not None:
        kind = registry.ticket_kind_named(ref.kind)
        if kind is not None and kind.get is not None and kind.prefix:
            number = (ticket_model_for(kind.prefix).objects.filter(id=ref.ticket_id)
                      .values_list("number", flat=True).first())
            ticket = kind.get(number) if number else None
            if ticket is not None:
                return Thread(kind, ticket, ticket.number, by_headers=True, internal=ref.internal or hidden,
                              via=ref.via)
    for tag in numbers_in_subject(parsed.subject):
        number = tag.strip("[]").upper()
        prefix = re.match(r"[A-Z]*", number).group(0)
        kind = registry.ticket_kind_for_prefix(prefix)
        if kind is None or kind.get is None:
            continue
        ticket = kind.get(number)
        if ticket is not None:
            return Thread(kind, ticket, ticket.number, internal=hidden)
    return Thread(internal=hidden)


def _accepts_reply(kind, ticket) -> bool:
    if kind.accepts_reply is not None:
        return kind.accepts_reply(ticket)
    return kind.brief(ticket).can_reply


def _may_reply(ticket, sender) -> bool:
    from servicedesk.watchers import mail_may_reply

    return mail_may_reply(ticket, sender)


def title_of(subject: str) -> str:
    """A ticket title from a mail subject: without reply/forward prefixes and our number tags."""
    from servicedesk.mailthread import numbers_in_subject

    title = subject or ""
    for tag in numbers_in_subject(title):
        title = title.replace(f"[{tag.strip('[]')}]", " ")
    title = " ".join(_PREFIXES.sub("", " ".join(title.split())).split())
    title = _PREFIXES.sub("", title).strip()  # "Re: [INC...] Fwd: ..." once the tag is gone
    return title[:200] or "(no subject)"


def _ticket_create(mailbox: Mailbox, parsed, *, sender, files, refused, data, named: str,
                   copied: list[str]) -> Outcome:
    from servicedesk.models import TimelineEntry
    from servicedesk.registry import MailIntake, registry

    kind = registry.ticket_kind_named(mailbox.creates)
    if kind is None or kind.create_from_mail is None:
        raise InvalidInput(f"creates: no ticket kind {mailbox.creates!r} takes mail", field="creates")
    body = parsed.text.strip()
    if named:  # a reply that cannot be one: its new text only, not the quoted history of the ticket's mail
        from email_channel.parsing import reply_text

        body = f"Follow-up to {named}: {reply_text(parsed.text).strip()}"
    body = _with_refused(body, refused) or "(no text)"
    intake = MailIntake(
        requester=sender, title=title_of(parsed.subject), body=body, files=tuple(files), data=data,
        service=mailbox.service, team=mailbox.team, category_id=mailbox.category_id,
        catalog_item_id=mailbox.catalog_item_id,
    )
    ticket = kind.create_from_mail(intake=intake)
    _watchers_from_cc(mailbox, copied, parsed.cc_names, ticket=ticket, sender=sender)
    first = (TimelineEntry.objects.filter(content_type=ContentType.objects.get_for_model(ticket), object_id=ticket.id)
             .order_by("id").values_list("id", flat=True).first())
    return Outcome("created", kind.kind, ticket, first)


def _cc_wanted(parsed, sender_address: str) -> tuple[list[str], list[str]]:
    """The Cc'd addresses that may become watchers (not ours, not the sender, each once), the first
    EMAIL_INBOUND_MAX_WATCHERS of them; and the rest, which are left out (one mail must not make a hundred
    accounts)."""
    ours = our_addresses()
    seen = {sender_address.lower()}
    wanted = []
    for address in parsed.cc:
        address = address.strip().lower()
        if not address or "@" not in address or address in ours or address in seen or len(address) > 254:
            continue
        seen.add(address)
        wanted.append(address)
    limit = max(0, settings.EMAIL_INBOUND_MAX_WATCHERS)
    return wanted[:limit], wanted[limit:]


def _watchers_from_cc(mailbox: Mailbox, copied: list[str], names: dict[str, str], *, ticket, sender) -> None:
    """The people a new ticket's mail was copied to (`copied`, from _cc_wanted; their account locks held) follow
    it (get its public replies), if they have an account or the mailbox makes accounts for senders it
    accepts."""
    from servicedesk.watchers import watcher_add

    for address in copied:
        user = _sender_known(address)
        if user is None:
            if not mailbox.create_accounts or mailbox.accept == Mailbox.Accept.KNOWN:
                continue
            if mailbox.accept == Mailbox.Accept.DOMAINS and not _domain_ok(mailbox, address):
                continue
            user = _account_create(address, names.get(address, ""))
        if user.is_active and user.id != ticket.requester_id:
            watcher_add(ticket=ticket, user=user, by=sender)
