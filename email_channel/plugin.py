"""What the email channel adds to the kernel (servicedesk.registry): its demo step, and the erasure of a
ticket's mails with the ticket. Imported once by EmailChannelConfig.ready(). The channel creates and replies to
tickets only through the registry's TicketKind, so no practice app imports it."""

from servicedesk.registry import DemoStep, registry


def _seed(options: dict) -> str:
    from email_channel.demo import seed_email

    return seed_email()


def _number_of(kind: str, ticket_id: int) -> str:
    """The ticket's number (the hook runs before the ticket row goes), else the one its mails recorded."""
    from email_channel.models import InboundMessage
    from servicedesk.errors import InvalidInput
    from servicedesk.services import ticket_model_for

    known = registry.ticket_kind_named(kind)
    if known is not None and known.prefix:
        try:
            number = (ticket_model_for(known.prefix).objects.filter(id=ticket_id)
                      .values_list("number", flat=True).first())
        except InvalidInput:
            number = None
        if number:
            return number
    return (InboundMessage.objects.filter(ticket_kind=kind, ticket_id=ticket_id).exclude(ticket_number="")
            .values_list("ticket_number", flat=True).first() or "")


def inbound_mail_forget(kind: str, ticket_id: int) -> int:
    """A ticket erased for data protection (servicedesk.services.ticket_erase) takes the content of every mail
    about it along: the mails that raised or answered it or were ignored while naming it, their copies in other
    mailboxes (the same Message-ID), and any mail whose subject carries its number tag. Their raw bytes hold
    its content and attachments (readable at /agent/mail/<id>/).

    Scrubbed, not deleted: raw, subject and sender go, the Message-ID and the state stay, and the reason says
    "erased with <NUMBER>". Dedupe then still knows the mail, so reading it again (an IMAP UIDVALIDITY change,
    another mailbox) is ignored and stored scrubbed too, instead of raising the erased ticket again
    (processing._check_duplicate). Returns how many rows were scrubbed."""
    from django.db.models import Q

    from email_channel.models import InboundMessage
    from email_channel.processing import ERASED, tombstone_update

    number = _number_of(kind, ticket_id)
    about = Q(ticket_kind=kind, ticket_id=ticket_id)
    ids = set(InboundMessage.objects.filter(about).exclude(message_id="").values_list("message_id", flat=True))
    rows = about | Q(message_id__in=ids) if ids else about
    if number:
        rows |= Q(subject__icontains=f"[{number}]")
    return InboundMessage.objects.filter(rows).update(
        **tombstone_update(f"{ERASED}{number or f'{kind} #{ticket_id}'}"[:300]))


def register() -> None:
    from email_channel import retention

    retention.register()  # retention: what goes and what stays (docs/retention.md)
    registry.demo_step(DemoStep(app="email_channel", seed=_seed, after=("incidents", "requests_app")))
    registry.ticket_erase_hook(inbound_mail_forget)
