"""Celery side of the email channel. Importing this module registers the outbox handler "email.inbound" (every
worker imports each app's tasks module); the IMAP poll tasks follow below it."""

from django.db import InterfaceError, OperationalError

from email_channel.processing import INBOUND_HANDLER, inbound_process
from servicedesk.outbox import outbox_handler


@outbox_handler(INBOUND_HANDLER, retry_on=(OperationalError, InterfaceError), max_attempts=12)
def _inbound(message):
    """One stored mail. A mail that fails on its content is recorded failed on its row by inbound_process and
    this returns None: retrying would fail the same way (admin's "Process again" queues it after a fix). A lost
    connection or a deadlock rolls back and retries."""
    inbound_process(message_id=message.payload["message"])
    return None
