"""The IMAP poller (email_channel.imap) against a real Dovecot on 127.0.0.1: what it stores, what it never
stores twice, what a dropped connection or a recreated folder does, TLS, errors and the lease."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from imap_tools import MailBox

from email_channel.imap import LEASE, MAX_BACKOFF, ImapProblem, mailbox_poll, mailbox_test, mailboxes_due
from email_channel.models import InboundMessage, Mailbox
from servicedesk.models import OutboxMessage
from tests.email_channel.imap_fixtures import PASSWORD, USER, mail
from tests.email_channel.imap_peers import HoldingProxy
from tests.peers import DroppingProxy


def stored(mailbox) -> list[InboundMessage]:
    return list(InboundMessage.objects.filter(mailbox=mailbox).order_by("uid"))


def seen_uids(server, folder="INBOX") -> set[int]:
    import ssl

    context = ssl.create_default_context(cafile=server.ca_file)
    with MailBox("127.0.0.1", server.imaps_port, ssl_context=context).login(USER, PASSWORD, folder) as box:
        return {int(u) for u in box.uids("SEEN")}


def test_appended_mail_is_stored_once_in_uid_order_and_queued_for_processing(trust_dovecot, make_mailbox):
    raws = [mail(f"Printer {n} is jammed") for n in range(3)]
    for raw in raws:
        trust_dovecot.append(USER, raw)
    mailbox = make_mailbox("ssl")
    before = timezone.now()

    result = mailbox_poll(mailbox_id=mailbox.id)

    assert (result.stored, result.skipped, result.error, result.busy) == (3, 0, "", False)
    rows = stored(mailbox)
    assert [r.uid for r in rows] == [1, 2, 3]
    assert [bytes(r.raw) for r in rows] == raws  # the bytes as sent, not re-serialised
    assert {r.source for r in rows} == {InboundMessage.Source.IMAP}
    mailbox.refresh_from_db()
    assert mailbox.uidvalidity and {r.uidvalidity for r in rows} == {mailbox.uidvalidity}
    assert mailbox.last_uid == 3 and mailbox.last_error == "" and mailbox.lease_until is None
    assert mailbox.last_polled_at >= before
    assert timedelta(seconds=59) <= mailbox.next_poll_at - mailbox.last_polled_at <= timedelta(seconds=61)
    queued = OutboxMessage.objects.filter(handler="email.inbound")
    assert sorted(m.payload["message"] for m in queued) == [r.id for r in rows]
    assert seen_uids(trust_dovecot) == {1, 2, 3}  # flagged \Seen after storing


def test_a_second_poll_stores_nothing_and_a_new_mail_only_it(trust_dovecot, make_mailbox):
    trust_dovecot.append(USER, mail("VPN drops every hour"))
    trust_dovecot.append(USER, mail("Cannot print"))
    mailbox = make_mailbox("ssl")
    assert mailbox_poll(mailbox_id=mailbox.id).stored == 2

    # "UID 3:*" answers UID 2 (the highest) although it is below 3: it must not even be looked at again.
    again = mailbox_poll(mailbox_id=mailbox.id)
    assert (again.stored, again.skipped, again.error) == (0, 0, "")
    assert len(stored(mailbox)) == 2

    trust_dovecot.append(USER, mail("Screen flickers"))
    third = mailbox_poll(mailbox_id=mailbox.id)
    assert (third.stored, third.skipped) == (1, 0)
    assert [r.subject or r.uid for r in stored(mailbox)][-1] in ("Screen flickers", 3)
    mailbox.refresh_from_db()
    assert mailbox.last_uid == 3


def test_a_mail_over_the_size_limit_is_not_read_whole_only_its_header_is_kept(trust_dovecot, make_mailbox,
                                                                                settings):
    """RFC822.SIZE first: a mail larger than EMAIL_INBOUND_MAX_BYTES never passes through memory or the database
    whole; its header and real size are stored, processing ignores it as too large, the next mail goes on."""
    from email_channel.processing import inbound_process

    settings.EMAIL_INBOUND_MAX_BYTES = 20_000
    trust_dovecot.append(USER, mail("Log files attached", body="line of a log file\n" * 5_000))  # ~95 KB
    trust_dovecot.append(USER, mail("Cannot print"))
    mailbox = make_mailbox("ssl")
    assert mailbox_poll(mailbox_id=mailbox.id).stored == 2

    big, small = stored(mailbox)
    raw = bytes(big.raw)
    assert big.size > 90_000 and len(raw) < 2_000 and raw.endswith(b"\r\n\r\n") and b"line of a log" not in raw
    assert big.subject == "Log files attached" and big.from_address == "carla@example.com"
    assert small.size == len(bytes(small.raw))
    big = inbound_process(message_id=big.id)
    assert big.state == "ignored" and big.reason.startswith("too large") and "only its header" in big.reason

    # Raising the limit and processing it again does not turn the header alone into an empty ticket.
    from email_channel.processing import inbound_retry

    settings.EMAIL_INBOUND_MAX_BYTES = 10_000_000
    inbound_retry(message_id=big.id, by=None)
    big = inbound_process(message_id=big.id)
    assert big.state == "ignored" and "only its header" in big.reason and not big.ticket_number


def test_starttls_with_verified_certificate(trust_dovecot, make_mailbox):
    trust_dovecot.append(USER, mail("Over STARTTLS"))
    mailbox = make_mailbox("starttls")
    result = mailbox_poll(mailbox_id=mailbox.id)
    assert (result.stored, result.error) == (1, "")


def test_a_certificate_from_an_unknown_ca_is_refused_with_a_readable_error(settings, dovecot, make_mailbox):
    settings.EMAIL_IMAP_CA_FILE = ""  # the system's CAs only: the test CA is not among them
    dovecot.append(USER, mail("Never read"))
    for security in ("ssl", "starttls"):
        mailbox = make_mailbox(security)
        result = mailbox_poll(mailbox_id=mailbox.id)
        mailbox.refresh_from_db()
        assert result.stored == 0
        assert mailbox.last_error.startswith(f"TLS certificate of 127.0.0.1:{mailbox.port} not trusted"), \
            mailbox.last_error
        assert result.error == mailbox.last_error
    assert not InboundMessage.objects.exists()


def test_wrong_password_is_a_readable_error_and_backs_off_until_fixed(trust_dovecot, make_mailbox):
    trust_dovecot.append(USER, mail("Keyboard missing keys"))
    mailbox = make_mailbox("ssl", password="wrong")
    now = timezone.now()

    result = mailbox_poll(mailbox_id=mailbox.id)

    mailbox.refresh_from_db()
    assert result.error.startswith(f"login refused for {USER} on 127.0.0.1:{trust_dovecot.imaps_port}")
    assert mailbox.last_error == result.error and mailbox.last_error_at >= now
    assert mailbox.last_polled_at is None and mailbox.lease_until is None
    assert mailbox.next_poll_at >= now + timedelta(seconds=120)  # twice the interval
    assert not InboundMessage.objects.exists()

    Mailbox.objects.filter(pk=mailbox.pk).update(password=PASSWORD)
    fixed = mailbox_poll(mailbox_id=mailbox.id)
    mailbox.refresh_from_db()
    assert (fixed.stored, fixed.error, mailbox.last_error) == (1, "", "")
    assert mailbox.last_polled_at is not None


def test_failures_in_a_row_double_the_wait_up_to_a_limit(trust_dovecot, make_mailbox):
    from tests.peers import free_port

    mailbox = make_mailbox("ssl", port=free_port())  # nothing listens there
    mailbox_poll(mailbox_id=mailbox.id)
    mailbox.refresh_from_db()
    assert timedelta(seconds=119) < mailbox.next_poll_at - mailbox.last_error_at <= timedelta(seconds=121)

    # Failing again ten minutes after the last failure: the wait doubles (to twenty minutes).
    Mailbox.objects.filter(pk=mailbox.pk).update(last_error_at=timezone.now() - timedelta(minutes=10))
    mailbox_poll(mailbox_id=mailbox.id)
    mailbox.refresh_from_db()
    assert timedelta(minutes=19) < mailbox.next_poll_at - mailbox.last_error_at <= timedelta(minutes=21)
    # ... and never beyond MAX_BACKOFF.
    Mailbox.objects.filter(pk=mailbox.pk).update(last_error_at=timezone.now() - timedelta(hours=2))
    mailbox_poll(mailbox_id=mailbox.id)
    mailbox.refresh_from_db()
    assert mailbox.next_poll_at - mailbox.last_error_at == MAX_BACKOFF


def test_unreachable_server_and_missing_folder_say_so(trust_dovecot, make_mailbox):
    from tests.peers import free_port

    closed = free_port()
    nobody = make_mailbox("ssl", port=closed)
    result = mailbox_poll(mailbox_id=nobody.id)
    assert result.error.startswith(f"cannot reach 127.0.0.1:{closed}: "), result.error
    assert "refused" in result.error.lower()

    missing = make_mailbox("ssl", folder="Tickets")
    result = mailbox_poll(mailbox_id=missing.id)
    assert result.error.startswith(f"cannot open folder 'Tickets' on 127.0.0.1:{trust_dovecot.imaps_port}"), \
        result.error


def test_a_connection_dropped_mid_poll_loses_nothing_and_doubles_nothing(trust_dovecot, make_mailbox):
    raws = [mail(f"Disk {n} full") for n in range(5)]
    for raw in raws:
        trust_dovecot.append(USER, raw)
    # Plain IMAP through a proxy that cuts the line in the middle of the server's answer to the third mail's
    # FETCH of its bytes -- the sixth FETCH: each mail is asked its RFC822.SIZE, then its BODY.PEEK[] (the first
    # connection only; the next one passes everything).
    with DroppingProxy(trust_dovecot.imap_port, on_command=b"FETCH", nth=6, then_bytes=120) as proxy:
        mailbox = make_mailbox("plain", port=proxy.port)
        result = mailbox_poll(mailbox_id=mailbox.id)
        assert proxy.cuts == 1

        mailbox.refresh_from_db()
        assert result.stored == 2
        assert result.error.startswith(f"connection to 127.0.0.1:{proxy.port} lost"), result.error
        assert mailbox.last_error == result.error and mailbox.last_uid == 2
        assert [r.uid for r in stored(mailbox)] == [1, 2]

        # The next poll reads from the third on: five mails, each once.
        result = mailbox_poll(mailbox_id=mailbox.id)
        assert (result.stored, result.skipped, result.error) == (3, 0, "")
    rows = stored(mailbox)
    assert [r.uid for r in rows] == [1, 2, 3, 4, 5]
    assert [bytes(r.raw) for r in rows] == raws
    assert OutboxMessage.objects.filter(handler="email.inbound").count() == 5


def test_a_recreated_folder_is_read_again_from_the_start(trust_dovecot, make_mailbox):
    first = [mail("Laptop stolen"), mail("Badge broken")]
    for raw in first:
        trust_dovecot.append(USER, raw, folder="Support")
    mailbox = make_mailbox("ssl", folder="Support")
    assert mailbox_poll(mailbox_id=mailbox.id).stored == 2
    mailbox.refresh_from_db()
    old_validity = mailbox.uidvalidity

    with trust_dovecot.mailbox(USER) as box:  # the folder is deleted and made again (a restore, a migration)
        box.folder.delete("Support")
        box.folder.create("Support")
    for raw in [*first, mail("Monitor dead")]:
        trust_dovecot.append(USER, raw, folder="Support")

    result = mailbox_poll(mailbox_id=mailbox.id)
    mailbox.refresh_from_db()
    assert mailbox.uidvalidity != old_validity and mailbox.last_uid == 3
    # Stored again under the new UIDVALIDITY (UIDs 1..3 name other messages now); processing's Message-ID check
    # keeps the two already seen from becoming tickets again (tests/email_channel/test_processing.py and below).
    assert (result.stored, result.error) == (3, "")
    rows = InboundMessage.objects.filter(mailbox=mailbox, uidvalidity=mailbox.uidvalidity).order_by("uid")
    assert [r.uid for r in rows] == [1, 2, 3]


def test_polled_mail_becomes_tickets_and_a_recreated_folder_makes_no_second_ones(trust_dovecot, make_mailbox):
    from email_channel.processing import inbound_process
    from incidents.models import Incident

    def process_all():
        for row in InboundMessage.objects.filter(state=InboundMessage.State.NEW).order_by("id"):
            inbound_process(message_id=row.id)

    first = [mail("Laptop stolen"), mail("Badge broken")]
    for raw in first:
        trust_dovecot.append(USER, raw, folder="Support")
    mailbox = make_mailbox("ssl", folder="Support")
    mailbox_poll(mailbox_id=mailbox.id)
    process_all()
    assert sorted(Incident.objects.values_list("title", flat=True)) == ["Badge broken", "Laptop stolen"]
    assert set(Incident.objects.values_list("requester__email", flat=True)) == {"carla@example.com"}

    with trust_dovecot.mailbox(USER) as box:
        box.folder.delete("Support")
        box.folder.create("Support")
    for raw in [*first, mail("Monitor dead")]:
        trust_dovecot.append(USER, raw, folder="Support")
    assert mailbox_poll(mailbox_id=mailbox.id).stored == 3
    process_all()

    assert sorted(Incident.objects.values_list("title", flat=True)) == ["Badge broken", "Laptop stolen",
                                                                        "Monitor dead"]
    again = InboundMessage.objects.filter(mailbox=mailbox).order_by("id")[2:4]
    assert [m.state for m in again] == [InboundMessage.State.IGNORED] * 2
    assert all(m.reason.startswith("duplicate of message #") for m in again), [m.reason for m in again]


@pytest.mark.django_db(transaction=True)
def test_two_polls_at_once_one_polls_the_other_steps_aside(trust_dovecot, make_mailbox):
    for n in range(3):
        trust_dovecot.append(USER, mail(f"Mouse {n} lost"))
    with HoldingProxy(trust_dovecot.imap_port, word=b"FETCH", nth=1) as proxy:
        mailbox = make_mailbox("plain", port=proxy.port)
        results = {}

        def first_poll():
            try:
                results["first"] = mailbox_poll(mailbox_id=mailbox.id)
            finally:
                connection.close()

        thread = threading.Thread(target=first_poll)
        thread.start()
        try:
            assert proxy.held.wait(15), "the first poll never fetched"
            # The first poll holds the lease while it waits for its first message.
            second = mailbox_poll(mailbox_id=mailbox.id)
            assert second.busy and (second.stored, second.error) == (0, "")
            assert Mailbox.objects.get(pk=mailbox.pk).lease_until > timezone.now()
        finally:
            proxy.release.set()
            thread.join(30)
    assert (results["first"].stored, results["first"].error) == (3, "")
    assert len(stored(mailbox)) == 3
    assert Mailbox.objects.get(pk=mailbox.pk).lease_until is None


def test_a_lease_left_behind_by_a_dead_poller_expires(trust_dovecot, make_mailbox):
    trust_dovecot.append(USER, mail("Phone line crackles"))
    mailbox = make_mailbox("ssl")
    Mailbox.objects.filter(pk=mailbox.pk).update(lease_until=timezone.now() + timedelta(minutes=1))
    assert mailbox_poll(mailbox_id=mailbox.id).busy
    assert not InboundMessage.objects.exists()
    Mailbox.objects.filter(pk=mailbox.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert mailbox_poll(mailbox_id=mailbox.id).stored == 1


def test_an_inactive_mailbox_is_not_read(trust_dovecot, make_mailbox):
    trust_dovecot.append(USER, mail("Nobody reads this"))
    mailbox = make_mailbox("ssl", active=False)
    result = mailbox_poll(mailbox_id=mailbox.id)
    assert result.stored == 0 and "not active" in result.error
    assert not InboundMessage.objects.exists()


def test_mailbox_test_says_how_many_messages_or_why_not(trust_dovecot, make_mailbox):
    trust_dovecot.append(USER, mail("One"))
    trust_dovecot.append(USER, mail("Two"))
    mailbox = make_mailbox("ssl")
    assert mailbox_test(mailbox=mailbox) == (
        f"Connected to 127.0.0.1:{trust_dovecot.imaps_port} as {USER}: folder 'INBOX' holds 2 messages.")
    assert not InboundMessage.objects.exists()  # a test reads nothing
    assert seen_uids(trust_dovecot) == set()

    mailbox.password = "wrong"
    with pytest.raises(ImapProblem, match=f"^login refused for {USER} on 127.0.0.1"):
        mailbox_test(mailbox=mailbox)


@pytest.mark.django_db
def test_mailboxes_due_are_the_active_ones_whose_time_came_and_are_queued_once():
    now = timezone.now()

    def box(name, **fields):
        return Mailbox.objects.create(name=name, address=f"{name}@example.com", host="imap.example.com",
                                      username=name, **fields)

    due = box("due", next_poll_at=now - timedelta(seconds=5))
    later = box("later", next_poll_at=now + timedelta(seconds=30))
    box("off", active=False, next_poll_at=now - timedelta(seconds=5))

    assert mailboxes_due(now=now) == [due.id]
    due.refresh_from_db()
    assert due.next_poll_at == now + LEASE  # not queued again by the next beat run while its poll waits
    assert mailboxes_due(now=now + timedelta(seconds=30)) == [later.id]  # "due" is not queued again


@pytest.mark.django_db
def test_beat_polls_mailboxes_every_30_seconds():
    from django_celery_beat.models import PeriodicTask

    entry = PeriodicTask.objects.get(name="email-mailboxes-poll")
    assert entry.task == "email_channel.tasks.mailboxes_poll" and entry.enabled
    assert (entry.interval.every, entry.interval.period) == (30, "seconds")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_polls_the_due_mailbox_and_the_ticket_appears(trust_dovecot, make_mailbox, smtp, tmp_path):
    """As beat does every 30 s: mailboxes_poll is queued; the worker polls Dovecot (over SSL, verifying the test
    CA given to it by EMAIL_IMAP_CA_FILE), stores the mail and processes it through the outbox."""
    from email_channel.tasks import mailboxes_poll
    from incidents.models import Incident
    from servicedesk.celery import app
    from tests.workers import celery_worker, wait_for

    trust_dovecot.append(USER, mail("Projector in room 4 shows no picture", body="It was fine yesterday.\n"))
    mailbox = make_mailbox("ssl")
    app.control.purge()
    with celery_worker(broker_url=app.conf.broker_url, smtp_port=smtp.port, tmp_path=tmp_path,
                       extra_env={"EMAIL_IMAP_CA_FILE": trust_dovecot.ca_file}):
        mailboxes_poll.delay()
        appeared = wait_for(lambda: Incident.objects.filter(title="Projector in room 4 shows no picture").exists(),
                            timeout=60)
        assert appeared, (tmp_path / "worker.log").read_text()[-3000:]

    incident = Incident.objects.get(title="Projector in room 4 shows no picture")
    assert incident.requester.email == "carla@example.com"
    assert "It was fine yesterday." in incident.description
    message = InboundMessage.objects.get(mailbox=mailbox)
    assert (message.state, message.action, message.ticket_number) == ("processed", "created", incident.number)
    mailbox.refresh_from_db()
    assert (mailbox.last_uid, mailbox.last_error) == (1, "") and mailbox.last_polled_at is not None
    assert not OutboxMessage.objects.filter(handler="email.inbound").exclude(state="done").exists()


def test_admin_actions_poll_now_and_test_connection_say_what_happened(trust_dovecot, make_mailbox, admin_user, rf):
    from django.contrib import admin
    from django.contrib.messages.storage.fallback import FallbackStorage

    from email_channel.admin_actions import poll_now, test_connection

    def run(action, *mailboxes) -> list[tuple[str, str]]:
        request = rf.post("/admin/email_channel/mailbox/")
        request.user, request.session = admin_user, {}
        request._messages = FallbackStorage(request)
        action(admin.site._registry[Mailbox], request, Mailbox.objects.filter(pk__in=[m.pk for m in mailboxes]))
        return [(m.level_tag, m.message) for m in request._messages]

    trust_dovecot.append(USER, mail("Fax machine on fire"))
    good = make_mailbox("ssl", name="Good")
    bad = make_mailbox("ssl", name="Bad", password="wrong")

    said = run(test_connection, good, bad)
    assert ("success", f"Good: Connected to 127.0.0.1:{trust_dovecot.imaps_port} as {USER}: folder 'INBOX' holds "
                       "1 message.") in said
    assert any(level == "error" and text.startswith(f"Bad: login refused for {USER} on") for level, text in said)

    said = run(poll_now, good)
    assert said == [("success", "Good: 1 new message stored for processing.")]
    assert InboundMessage.objects.filter(mailbox=good).count() == 1
    Mailbox.objects.filter(pk=good.pk).update(lease_until=timezone.now() + timedelta(minutes=1))
    assert run(poll_now, good) == [("warning", "Good: a poll is already running; try again in a moment.")]


def test_one_poison_mail_never_stops_a_mailbox(trust_dovecot, make_mailbox):
    """A NUL in an encoded subject used to make PostgreSQL refuse the row, the poll report an IMAP error and
    last_uid never move: the mailbox stuck for good. Now that mail is stored clean, and a mail the database
    refuses anyway (a CHECK constraint stands for it here) is kept raw as failed, and the poll goes on."""
    from django.db import connection

    from email_channel.processing import inbound_retry

    nul = (b"From: x@example.com\r\nTo: desk@example.com\r\nSubject: =?utf-8?q?hi=00there?=\r\n"
           b"Message-ID: <nul@example.com>\r\n\r\nhello\r\n")
    refused = mail("This one is poison")
    for raw in (mail("before"), nul, refused, mail("after")):
        trust_dovecot.append(USER, raw)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE email_channel_inboundmessage ADD CONSTRAINT test_refuse "
                       "CHECK (subject NOT LIKE '%poison%')")
    mailbox = make_mailbox("ssl")

    result = mailbox_poll(mailbox_id=mailbox.id)

    assert (result.stored, result.error) == (4, "")
    mailbox.refresh_from_db()
    assert mailbox.last_uid == 4 and mailbox.last_error == ""
    rows = stored(mailbox)
    assert [r.subject for r in rows] == ["before", "hithere", "", "after"]
    kept = rows[2]
    assert kept.state == InboundMessage.State.FAILED and bytes(kept.raw) == refused
    assert kept.error.startswith("not stored as it came: IntegrityError")
    queued = {m.payload["message"] for m in OutboxMessage.objects.filter(handler="email.inbound")}
    assert queued == {rows[0].id, rows[1].id, rows[3].id}
    assert inbound_retry(message_id=kept.id, by=None).state == InboundMessage.State.NEW  # "Process again"
