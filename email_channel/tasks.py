"""Celery side of the email channel. Importing this module registers the outbox handler "email.inbound" (every
worker imports each app's tasks module); the IMAP poll tasks follow below it."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from email_channel.models import InboundMessage
from email_channel.processing import INBOUND_HANDLER, inbound_process
from servicedesk.outbox import Retry, outbox_handler


def _inbound_given_up(message, error: str) -> None:
    """The outbox gave up (the database kept failing): the mail is marked failed with the error, so it does not
    sit "new" for ever and admin's "Process again" can take it."""
    InboundMessage.objects.filter(id=message.payload["message"], state=InboundMessage.State.NEW).update(
        state=InboundMessage.State.FAILED, error=error)


@outbox_handler(INBOUND_HANDLER, retry_on=(OperationalError, InterfaceError), max_attempts=12,
                on_give_up=_inbound_given_up, queue="notifications")
def _inbound(message):
    """One stored mail. A mail that fails on its content is recorded failed on its row by inbound_process and
    this returns None: retrying would fail the same way (admin's "Process again" queues it after a fix). A lost
    connection or a deadlock rolls back and retries. A row still new afterwards is held by another processor
    (import_email, a second delivery) that may yet roll back: look again later rather than call it done."""
    row = inbound_process(message_id=message.payload["message"])
    if row.state == InboundMessage.State.NEW:
        return Retry(f"mail #{row.id} is being processed by another process")
    return None


# --- IMAP polling (email_channel.imap) ------------------------------------------------------------------------

POLL_TASK = "email_channel.tasks.mailboxes_poll"
POLL_TASK_NAME = "email-mailboxes-poll"


@shared_task(acks_late=True)
def mailboxes_poll() -> dict:
    """Beat (every 30 s, entry "email-mailboxes-poll"): queue a poll of each active mailbox that is due. Only
    due mailboxes are touched (index on next_poll_at); each poll runs as its own task, so one slow server does
    not hold up the others."""
    from email_channel.imap import mailboxes_due

    due = mailboxes_due()
    for mailbox_id in due:
        mailbox_poll_one.delay(mailbox_id)
    return {"queued": len(due)}


@shared_task(acks_late=True)
def mailbox_poll_one(mailbox_id: int) -> dict:
    """Poll one mailbox (a lease keeps a second copy of this task from polling it at the same time)."""
    from email_channel.imap import mailbox_poll

    result = mailbox_poll(mailbox_id=mailbox_id)
    return {"stored": result.stored, "skipped": result.skipped, "error": result.error, "busy": result.busy}
