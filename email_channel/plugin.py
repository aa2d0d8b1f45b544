"""What the email channel adds to the kernel (servicedesk.registry): its demo step, and the erasure of a
ticket's mails with the ticket. Imported once by EmailChannelConfig.ready(). The channel creates and replies to
tickets only through the registry's TicketKind, so no practice app imports it."""

from servicedesk.registry import DemoStep, registry


def _seed(options: dict) -> str:
    from email_channel.demo import seed_email

    return seed_email()


def inbound_mail_forget(kind: str, ticket_id: int) -> int:
    """A ticket erased for data protection (servicedesk.services.ticket_erase) takes the mails that raised or
    answered it with it: their raw bytes hold its content and attachments, readable at /agent/mail/<id>/."""
    from email_channel.models import InboundMessage

    return InboundMessage.objects.filter(ticket_kind=kind, ticket_id=ticket_id).delete()[0]


def register() -> None:
    registry.demo_step(DemoStep(app="email_channel", seed=_seed, after=("incidents", "requests_app")))
    registry.ticket_erase_hook(inbound_mail_forget)
