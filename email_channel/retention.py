"""The email channel's part in retention (servicedesk.retention, docs/retention.md): the raw bytes of decided mails
go RETENTION_MAIL_RAW_DAYS after arrival (the row stays: dedupe needs its Message-ID), and the mails about tickets
that retention removes lose their content as with an erasure."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Value
from django.db.models.functions import Concat
from django.utils import timezone

from servicedesk.registry import RetentionRule, registry


def inbound_mails_retire(kind: str, ticket_ids: list[int]) -> int:
    """Retention removes these tickets: the mails that raised or answered them become tombstones, as with an
    erasure (the Message-ID stays for dedupe, the reason says "erased with <NUMBER>"), in one UPDATE through the
    index on (ticket_kind, ticket_id). Copies in other mailboxes and mails that only named the number are left to
    RETENTION_MAIL_RAW_DAYS (finding them would read every mail).

    Their raw bytes are not archived here (the ticket's archived timeline holds what the mails said). Each mail
    gets `raw_purged_at` if it has none yet, so the "email.raw" rule never reads (nor archives) a tombstone
    again; a mail whose bytes that rule already removed, and archived, keeps the date it did so."""
    from email_channel.models import InboundMessage
    from email_channel.processing import ERASED, tombstone_update

    return InboundMessage.objects.filter(ticket_kind=kind, ticket_id__in=ticket_ids).update(
        **tombstone_update(Concat(Value(ERASED), "ticket_number", Value(": removed by retention"))))


def _keep() -> timedelta | None:
    return timedelta(days=settings.RETENTION_MAIL_RAW_DAYS) if settings.RETENTION_MAIL_RAW_DAYS else None


def _due(cutoff):
    """Decided mails (processed, ignored) whose bytes are still kept: new and failed ones are still to be read.
    Index inbound_raw_kept_idx holds exactly these."""
    from email_channel.models import InboundMessage

    return InboundMessage.objects.filter(received_at__lt=cutoff, raw_purged_at__isnull=True,
                                         state__in=[InboundMessage.State.PROCESSED, InboundMessage.State.IGNORED])


def _archive_rows(ids: list[int]):
    """The batch's mails, read a few at a time (the archive writes them one by one: a batch holds up to
    RETENTION_BATCH_BYTES of raw mail, never all of it in memory more than once)."""
    from email_channel.models import InboundMessage

    return InboundMessage.objects.filter(id__in=ids).order_by("received_at", "id").values(
        "id", "mailbox_id", "message_id", "from_address", "subject", "received_at", "state", "ticket_number",
        "raw").iterator(chunk_size=20)


def _remove(ids: list[int]) -> int:
    from email_channel.models import InboundMessage

    return InboundMessage.objects.filter(id__in=ids).update(raw=b"", raw_purged_at=timezone.now())


def register() -> None:
    registry.tickets_retire_hook(inbound_mails_retire)
    registry.retention_rule(RetentionRule(
        key="email.raw", label="raw bytes of decided mails", keep=_keep, due=_due, date_field="received_at",
        remove=_remove, archive_rows=_archive_rows, order=30, size_field="size"))
