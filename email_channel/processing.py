"""Inbound mail: store it as it arrived, then decide once what it becomes.

    inbound_store(mailbox=, raw=, source=)   # IMAP poll / import_email: row + outbox "email.inbound", one commit
    inbound_process(message_id=)             # the worker (or import_email in-process): decide and write
    inbound_retry(message_id=, by=)          # admin "Process again" on a failed message

Processing claims the row (SELECT ... FOR UPDATE SKIP LOCKED, state new only), so a second delivery of the outbox
message, a relay and import_email never act on one mail twice. The decision, in order:

 0. too large (EMAIL_INBOUND_MAX_BYTES): kept, ignored;
 1. duplicate: a mail with the same Message-ID was already processed or ignored (the same mail copied to two
    mailboxes, or piped and polled): ignored;
 2. loops and noise: auto-replies, bounces, bulk and list mail, our own notifications (X-Servicedesk-Ticket)
    and mail from our own addresses are ignored and never answered -- nothing here queues any mail;
 3. who may write: the mailbox's policy (anyone, known users, domains); an unknown sender gets a requester
    account when the mailbox says so;
 4. rate limit per sender and hour (mails that became tickets or replies);
 5. a reply (our Message-IDs in In-Reply-To/References, else a number tag in the subject) by someone who may
    reply to a ticket that still takes replies becomes a public comment; anything else opens a ticket
    ("Follow-up to INC...: " when it named one);
 6. a new ticket of the kind the mailbox creates, through the kernel registry; Cc'd people become watchers.

Anything raised while deciding or writing rolls back to a savepoint and marks the mail failed with the error
(the raw mail stays); a failed mail is processed again only through inbound_retry. A lost database connection
or a deadlock is not the mail's fault: it is raised, so the outbox retries it later.
"""

import logging
import mimetypes
import re
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from email_channel.models import InboundMessage, Mailbox
from servicedesk.errors import InvalidInput
from servicedesk.locks import advisory_xact_lock
from servicedesk.outbox import outbox_enqueue

log = logging.getLogger(__name__)

INBOUND_HANDLER = "email.inbound"
State = InboundMessage.State

# "Re:", "Fwd:", German "AW:"/"WG:", Nordic "SV:", Dutch "Antw:", French "TR:", with counters like "Re[2]:".
_PREFIXES = re.compile(r"^\s*(?:(?:re|fwd?|aw|wg|sv|antw|tr)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_USERNAME_CHARS = re.compile(r"[^\w.@+-]")


class Decided(Exception):  # noqa: N818 - not an error: how a rule says "ignore this mail, for this reason"
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


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
    return message_id[:998], from_address[:320], subject[:998]


def inbound_store(*, mailbox: Mailbox, raw: bytes, source: str, uidvalidity: int | None = None,
                  uid: int | None = None) -> InboundMessage | None:
    """Keep one mail and queue its processing, in one transaction: the mail is never lost once stored, and
    the worker processes it exactly once. None when this (mailbox, uidvalidity, uid) is already stored (an IMAP
    poll that was cut off before it moved its mark on)."""
    message_id, from_address, subject = _header_peek(raw)
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: the unique (mailbox, uidvalidity, uid) may refuse the row
                message = InboundMessage.objects.create(
                    mailbox=mailbox, source=source, uidvalidity=uidvalidity, uid=uid, message_id=message_id,
                    from_address=from_address, subject=subject, raw=bytes(raw), size=len(raw),
                )
        except IntegrityError:
            if uid is None:
                raise
            return None
        outbox_enqueue(INBOUND_HANDLER, {"message": message.id})
    return message


# --- processing ------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    action: str
    ticket_kind: str
    ticket: object
    entry_id: int | None


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
        except (OperationalError, InterfaceError):
            raise  # the database's trouble, not the mail's: the outbox retries the whole message
        except Exception as exc:
            log.exception("email: inbound message %s failed", message.id)
            message.state, message.reason, message.error = State.FAILED, "", f"{exc.__class__.__name__}: {exc}"
        else:
            message.state, message.reason, message.error = State.PROCESSED, "", ""
            message.action = outcome.action
            message.ticket_kind = outcome.ticket_kind
            message.ticket_id = outcome.ticket.id
            message.ticket_number = outcome.ticket.number
            message.entry_id = outcome.entry_id
        message.save(update_fields=["state", "reason", "error", "attempts", "processed_at", "action", "ticket_kind",
                                    "ticket_id", "ticket_number", "entry_id", "message_id", "from_address",
                                    "subject"])
    return message


@transaction.atomic
def inbound_retry(*, message_id: int, by) -> InboundMessage:
    """Process a failed mail again (after its mailbox's configuration was fixed): back to new, queued again.
    A mail in any other state is left as it is."""
    from servicedesk.services import audit_record

    message = InboundMessage.objects.select_for_update().get(id=message_id)
    if message.state != State.FAILED:
        return message
    error = message.error
    message.state, message.error = State.NEW, ""
    message.save(update_fields=["state", "error"])
    audit_record(actor=by, action="inboundmessage.retried", obj=message, changes={"error": error})
    outbox_enqueue(INBOUND_HANDLER, {"message": message.id})
    return message


def _decide(message: InboundMessage, *, now) -> Outcome:
    """Apply the rules in order; raise Decided to ignore the mail."""
    from email_channel.parsing import mail_parse

    mailbox = message.mailbox
    limit = settings.EMAIL_INBOUND_MAX_BYTES
    if message.size > limit:
        raise Decided(f"too large: {message.size} bytes (limit {limit})")
    raw = bytes(message.raw)
    parsed = mail_parse(raw)
    message.message_id = parsed.message_id[:998]
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
    if sender is None:
        sender = _account_create(sender_address, parsed.from_name)

    kept, refused = _attachments(parsed.parts)
    data = {"channel": "email", "mail": message.id, "message_id": parsed.message_id}
    kind, ticket, named = _thread(parsed)
    if ticket is not None and _accepts_reply(kind, ticket) and _may_reply(ticket, sender):
        from email_channel.parsing import reply_text

        body = _with_refused(reply_text(parsed.text).strip(), refused)
        if not body and not kept:
            raise Decided("empty reply")
        entry = kind.reply(ticket=ticket, author=sender, body=body, files=kept, data=data)
        return Outcome("replied", kind.kind, ticket, getattr(entry, "id", None))

    return _ticket_create(mailbox, parsed, raw, sender=sender, files=kept, refused=refused, data=data, named=named)


def _check_duplicate(message: InboundMessage) -> None:
    if not message.message_id:
        return
    # Two copies of one mail (two mailboxes, pipe and poll) processed at once: the second waits here for the
    # first to commit, then sees it.
    advisory_xact_lock(f"email:{message.message_id}")
    first = (InboundMessage.objects.filter(message_id=message.message_id,
                                           state__in=[State.PROCESSED, State.IGNORED])
             .exclude(id=message.id).order_by("id").values_list("id", flat=True).first())
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


def _account_create(address: str, display_name: str):
    """A requester account for a new sender: username from the address (made unique), names from the display
    name, no usable password (they set one through "Forgot password" if they want the portal)."""
    from servicedesk.roles import Role
    from servicedesk.services import user_provision

    User = get_user_model()
    base = _USERNAME_CHARS.sub("", address.split("@", 1)[0])[:140] or "user"
    username, n = base, 1
    while User.objects.filter(username__iexact=username).exists():
        n += 1
        username = f"{base}{n}"
    first, last = _names(display_name)
    user, _ = user_provision(username=username, role=Role.REQUESTER, email=address, first_name=first,
                             last_name=last)
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


def _thread(parsed):
    """(kind, ticket, named number) of the ticket this mail answers: our Message-IDs first, then the subject's
    number tags. The ticket is None when nothing names one of ours; `named` is the number a mail named even
    when the ticket cannot take its reply."""
    from servicedesk.mailthread import numbers_in_subject, thread_of
    from servicedesk.registry import registry
    from servicedesk.services import ticket_model_for

    found = thread_of([*parsed.in_reply_to, *parsed.references])
    if found is not None:
        kind = registry.ticket_kind_named(found[0])
        if kind is not None and kind.get is not None and kind.prefix:
            number = ticket_model_for(kind.prefix).objects.filter(id=found[1]).values_list("number", flat=True).first()
            ticket = kind.get(number) if number else None
            if ticket is not None:
                return kind, ticket, ticket.number
    for tag in numbers_in_subject(parsed.subject):
        number = tag.strip("[]").upper()
        prefix = re.match(r"[A-Z]*", number).group(0)
        kind = registry.ticket_kind_for_prefix(prefix)
        if kind is None or kind.get is None:
            continue
        ticket = kind.get(number)
        if ticket is not None:
            return kind, ticket, ticket.number
    return None, None, ""


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


def _ticket_create(mailbox: Mailbox, parsed, raw: bytes, *, sender, files, refused, data, named: str) -> Outcome:
    from servicedesk.models import TimelineEntry
    from servicedesk.registry import MailIntake, registry

    kind = registry.ticket_kind_named(mailbox.creates)
    if kind is None or kind.create_from_mail is None:
        raise InvalidInput(f"creates: no ticket kind {mailbox.creates!r} takes mail", field="creates")
    body = parsed.text.strip()
    if named:
        body = f"Follow-up to {named}: {body}"
    body = _with_refused(body, refused) or "(no text)"
    intake = MailIntake(
        requester=sender, title=title_of(parsed.subject), body=body, files=tuple(files), data=data,
        service=mailbox.service, team=mailbox.team, category_id=mailbox.category_id,
        catalog_item_id=mailbox.catalog_item_id,
    )
    ticket = kind.create_from_mail(intake=intake)
    _watchers_from_cc(mailbox, parsed, raw, ticket=ticket, sender=sender)
    first = (TimelineEntry.objects.filter(content_type=ContentType.objects.get_for_model(ticket), object_id=ticket.id)
             .order_by("id").values_list("id", flat=True).first())
    return Outcome("created", kind.kind, ticket, first)


def _cc_names(raw: bytes) -> dict[str, str]:
    """Display names of the Cc'd addresses (ParsedMail.cc holds the addresses only), for new accounts."""
    try:
        headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
        values = [str(value) for value in headers.get_all("Cc", [])]
    except Exception:  # noqa: BLE001 - no names then; the addresses come from the parsed mail
        return {}
    return {address.strip().lower(): name for name, address in getaddresses(values) if address}


def _watchers_from_cc(mailbox: Mailbox, parsed, raw: bytes, *, ticket, sender) -> None:
    """The people a new ticket's mail was copied to follow it (get its public replies), if they have an account
    or the mailbox makes accounts for senders it accepts."""
    from servicedesk.watchers import watcher_add

    ours = our_addresses()
    names = _cc_names(raw) if parsed.cc else {}
    seen = {sender.email.lower()}
    for address in parsed.cc:
        address = address.strip().lower()
        display = names.get(address, "")
        if not address or "@" not in address or address in ours or address in seen:
            continue
        seen.add(address)
        user = _sender_known(address)
        if user is None:
            if not mailbox.create_accounts or mailbox.accept == Mailbox.Accept.KNOWN:
                continue
            if mailbox.accept == Mailbox.Accept.DOMAINS and not _domain_ok(mailbox, address):
                continue
            # No lock here (one is held for the sender; a second could deadlock with a mail the other way
            # round): two mails copying one new address at once both reach user_provision with the same
            # username, and its get_or_create makes one account.
            user = _account_create(address, display)
        if user.is_active and user.id != ticket.requester_id:
            watcher_add(ticket=ticket, user=user, by=sender)
