"""Sending queued mail in a test the way the worker does (servicedesk.outbox), for tests that read what went out
(Django's locmem outbox or a real SMTP sink)."""

from servicedesk import outbox
from servicedesk.models import OutboxMessage


def run_mail() -> list[OutboxMessage]:
    """Send every pending mail; the outbox messages, oldest first. Fails on any mail that could not be sent."""
    sent = []
    for message in OutboxMessage.objects.filter(handler="email.send", state="pending").order_by("id"):
        assert outbox.outbox_process(message.id) == "done", message.last_error
        sent.append(message)
    return sent
