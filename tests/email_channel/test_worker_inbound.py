"""A stored mail processed by a real Celery worker (the "email.inbound" outbox handler), as after an IMAP poll
or the pipe: the ticket appears, and the requester's acknowledgement reaches a real SMTP sink threaded."""

import pytest

from email_channel.models import InboundMessage
from email_channel.processing import inbound_store
from incidents.models import Incident
from servicedesk.models import OutboxMessage
from tests.email_channel.inbound_helpers import mail, mailbox_make
from tests.workers import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_worker_turns_a_stored_mail_into_an_incident(worker, smtp, requester):
    mailbox = mailbox_make()

    stored = inbound_store(mailbox=mailbox, raw=mail(subject="Badge reader at the door is dead"), source="imap",
                           uidvalidity=1, uid=1)

    assert wait_for(lambda: InboundMessage.objects.get(id=stored.id).state != InboundMessage.State.NEW), \
        "the worker did not process the mail"
    message = InboundMessage.objects.get(id=stored.id)
    assert message.state == InboundMessage.State.PROCESSED, message.error
    incident = Incident.objects.get(id=message.ticket_id)
    assert incident.title == "Badge reader at the door is dead" and incident.requester == requester
    assert OutboxMessage.objects.get(handler="email.inbound").state == OutboxMessage.State.DONE
    # The acknowledgement goes out threaded: its subject carries the number a reply will be matched by.
    assert smtp.received.wait(timeout=45), "the worker sent no acknowledgement"
    sent = smtp.messages[0]
    assert sent["to"] == ["alice@example.com"]
    assert f"[{incident.number}]" in sent["data"]
    assert "X-Servicedesk-Ticket: " + incident.number in sent["data"]


def test_the_worker_records_a_failure_once_and_does_not_retry_it(worker, requester):
    from email_channel.models import Mailbox

    mailbox = mailbox_make(creates=Mailbox.Creates.REQUEST)  # no catalog item: every mail fails

    stored = inbound_store(mailbox=mailbox, raw=mail(), source="pipe")

    assert wait_for(lambda: InboundMessage.objects.get(id=stored.id).state != InboundMessage.State.NEW)
    message = InboundMessage.objects.get(id=stored.id)
    assert message.state == InboundMessage.State.FAILED and "catalog_item" in message.error
    outbox = OutboxMessage.objects.get(handler="email.inbound")
    assert (outbox.state, outbox.attempts) == (OutboxMessage.State.DONE, 1)
    assert message.attempts == 1
