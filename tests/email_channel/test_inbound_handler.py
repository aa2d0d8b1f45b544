"""The "email.inbound" outbox handler when another process holds the mail's row (import_email, a second
delivery): it must look again later rather than call the mail done, and when the outbox gives up the mail is
marked failed so "Process again" can take it. Real PostgreSQL row locks from a second connection."""

import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from email_channel.models import InboundMessage
from email_channel.processing import inbound_retry, inbound_store
from servicedesk.models import OutboxMessage
from servicedesk.outbox import outbox_process
from tests.email_channel.inbound_helpers import mail, mailbox_make

pytestmark = pytest.mark.django_db(transaction=True)
State = InboundMessage.State


@contextmanager
def row_held(message_id: int, *, until_someone_waits: bool = False):
    """Another connection holds the mail's row (SELECT ... FOR UPDATE) until the block ends -- or, with
    `until_someone_waits`, until a backend waits for that lock (then it commits, changing nothing)."""
    held, release, errors = threading.Event(), threading.Event(), []

    def hold():
        try:
            with transaction.atomic():
                InboundMessage.objects.select_for_update().get(id=message_id)
                held.set()
                if until_someone_waits:
                    with connection.cursor() as cursor:
                        for _ in range(400):
                            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                           "AND datname = current_database()")
                            if cursor.fetchone()[0]:
                                break
                            release.wait(0.05)
                else:
                    release.wait(timeout=30)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            held.set()
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(timeout=20)
    try:
        yield
    finally:
        release.set()
        thread.join(timeout=30)
    assert not errors, errors


def _stored(requester):
    stored = inbound_store(mailbox=mailbox_make(), raw=mail(), source="pipe")
    return stored, OutboxMessage.objects.get(handler="email.inbound")


def test_a_mail_held_by_another_process_is_tried_again_not_done(requester):
    stored, queued = _stored(requester)

    with row_held(stored.id):
        assert outbox_process(queued.id) == OutboxMessage.State.PENDING

    queued.refresh_from_db()
    assert queued.attempts == 1 and queued.next_attempt_at > timezone.now()
    assert queued.last_error == f"mail #{stored.id} is being processed by another process"
    assert InboundMessage.objects.get(id=stored.id).state == State.NEW  # the holder changed nothing

    assert outbox_process(queued.id, now=timezone.now() + timedelta(hours=1)) == OutboxMessage.State.DONE
    assert InboundMessage.objects.get(id=stored.id).state == State.PROCESSED


def test_when_the_outbox_gives_up_the_mail_is_failed_and_can_be_processed_again(requester, admin_user):
    stored, queued = _stored(requester)
    OutboxMessage.objects.filter(id=queued.id).update(attempts=11)  # the 12th attempt is the last

    with row_held(stored.id, until_someone_waits=True):
        assert outbox_process(queued.id) == OutboxMessage.State.FAILED

    message = InboundMessage.objects.get(id=stored.id)
    assert message.state == State.FAILED
    assert message.error == f"gave up after 12 attempts: mail #{stored.id} is being processed by another process"
    assert inbound_retry(message_id=stored.id, by=admin_user).state == State.NEW
