"""`manage.py import_email [--mailbox NAME] [FILE|-]`: one mail from a file or stdin, for a mail server's pipe
transport. Stores it and processes it at once, so the mail server learns from the exit code whether to keep it:

    0   stored (whatever processing made of it: a ticket, a reply, ignored, failed -- all shown in admin)
    65  EX_DATAERR: the input is not a mail (the mail server bounces it)
    75  EX_TEMPFAIL: not stored -- the database could not take it, no such mailbox, several and none named, or
        anything unexpected (the mail server keeps it and tries again; Postfix bounces on 78, so that is unused)

A mail the database refuses as it came is kept as a bare failed row (exit 0); once a mail is stored, trouble in
processing it leaves it to the worker (the outbox message is queued with it) and still exits 0: a second
delivery would only be a duplicate.
"""

import logging
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from email_channel.models import InboundMessage, Mailbox
from email_channel.processing import inbound_process, inbound_store_safely

log = logging.getLogger(__name__)

EX_DATAERR = 65
EX_TEMPFAIL = 75


def outcome_line(message: InboundMessage) -> str:
    """What happened to the mail, in one line."""
    State = InboundMessage.State
    if message.state == State.PROCESSED:
        if message.action == "replied":
            return f"replied on {message.ticket_number} (mail #{message.id})"
        return f"{message.action} {message.ticket_number} (mail #{message.id})"
    if message.state == State.IGNORED:
        return f"ignored: {message.reason} (mail #{message.id})"
    if message.state == State.FAILED:
        return f"failed: {message.error} (mail #{message.id}; kept, see admin)"
    return f"stored as mail #{message.id}; the worker processes it"


class Command(BaseCommand):
    help = "Store and process one mail read from FILE or stdin (a mail server's pipe transport)."
    stealth_options = ("stdin",)  # call_command(..., stdin=a binary stream) in place of sys.stdin

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", default="-", help="The raw mail (RFC 5322); '-' or none: stdin.")
        parser.add_argument("--mailbox", help="The mailbox's name (needed when there is more than one).")

    def handle(self, *args, **opts):
        raw = self._read(opts["file"], opts.get("stdin"))
        try:
            from email_channel.parsing import MailUnreadable, mail_parse

            mail_parse(raw)
        except MailUnreadable as exc:
            raise CommandError(f"not a mail: {exc}", returncode=EX_DATAERR) from exc
        except Exception:  # noqa: BLE001 - our parser's bug, not the mail's: keep it; processing records the failure
            log.exception("import_email: the parser failed on this mail; storing it anyway")
        if not raw.strip():
            raise CommandError("not a mail: the input is empty", returncode=EX_DATAERR)
        try:
            mailbox = self._mailbox(opts["mailbox"])
            message = inbound_store_safely(mailbox=mailbox, raw=raw, source=InboundMessage.Source.PIPE)
        except CommandError:
            raise
        except Exception as exc:  # noqa: BLE001 - not stored: the mail server must keep the mail and try again
            log.exception("import_email: the mail could not be stored")
            raise CommandError(f"not stored, try again later: {exc.__class__.__name__}: {exc}",
                               returncode=EX_TEMPFAIL) from exc
        if message.state == InboundMessage.State.NEW:
            try:
                message = inbound_process(message_id=message.id)
                if message.state == InboundMessage.State.NEW:
                    # A worker claimed it first (the outbox hand-off): wait for its commit to report the outcome.
                    with transaction.atomic():
                        message = InboundMessage.objects.select_for_update().get(id=message.id)
            except Exception:  # noqa: BLE001 - stored and queued: the worker processes it
                log.exception("import_email: mail #%s stored, processing it here failed", message.id)
                message = InboundMessage(id=message.id, state=InboundMessage.State.NEW)
        self.stdout.write(outcome_line(message))

    @staticmethod
    def _read(name: str, stdin) -> bytes:
        if name == "-":
            return (stdin or sys.stdin.buffer).read()
        try:
            with open(name, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise CommandError(f"cannot read {name}: {exc.strerror}", returncode=EX_DATAERR) from exc

    @staticmethod
    def _mailbox(name: str | None) -> Mailbox:
        """The named mailbox, else the only one. A wrong name is a configuration mistake someone will fix: the
        mail server must keep the mail meanwhile (75), not bounce it (Postfix bounces on 78, EX_CONFIG)."""
        if name:
            mailbox = Mailbox.objects.filter(name=name).first()
            if mailbox is None:
                raise CommandError(f"no mailbox named {name!r}", returncode=EX_TEMPFAIL)
            return mailbox
        mailboxes = list(Mailbox.objects.all()[:2])
        if len(mailboxes) != 1:
            raise CommandError("no mailbox configured" if not mailboxes else
                               "several mailboxes: name one with --mailbox", returncode=EX_TEMPFAIL)
        return mailboxes[0]
