"""Inbound processing (email_channel.processing): what a stored mail becomes, each rule with real mail bytes,
on PostgreSQL; nothing is mocked."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from email_channel.models import InboundMessage, Mailbox
from email_channel.processing import inbound_process, inbound_retry, inbound_store, title_of
from incidents.models import Incident
from requests_app.models import ServiceRequest
from servicedesk.mailthread import OUR_HEADER, thread_root
from servicedesk.models import OutboxMessage, TimelineEntry, Watcher
from servicedesk.roles import Role, role_of
from tests.email_channel.inbound_helpers import DESK, SAMPLES, deliver, mail, mailbox_make, png, sample
from tests.requests_app import factories

State = InboundMessage.State
pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(db):
    return mailbox_make()


def _timeline(ticket):
    return list(TimelineEntry.objects.filter(content_type=ContentType.objects.get_for_model(ticket),
                                             object_id=ticket.id).order_by("id"))


def _mail_sends() -> int:
    return OutboxMessage.objects.filter(handler="email.send").count()


# --- new tickets -----------------------------------------------------------------------------------------


def test_it_creates_an_incident_from_a_known_requesters_mail(mailbox, requester):
    message = deliver(mailbox, mail(subject="Re: Fwd: Printer on floor 2 jams", text="It jams on every page."))

    assert message.state == State.PROCESSED, message.error
    assert (message.action, message.ticket_kind) == ("created", "incident")
    incident = Incident.objects.get(id=message.ticket_id)
    assert incident.number == message.ticket_number
    assert incident.requester == requester
    assert incident.channel == "email"
    assert incident.title == "Printer on floor 2 jams"
    assert "It jams on every page." in incident.description
    created = TimelineEntry.objects.get(id=message.entry_id)
    assert created.data.get("mail") == message.id and created.data.get("channel") == "email"
    assert message.attempts == 1 and message.processed_at is not None


def test_it_uses_the_mailboxs_defaults_for_the_new_incident(requester):
    from incidents.models import Category
    from servicedesk.models import Service, Team

    category = Category.objects.create(name="Hardware")
    service = Service.objects.create(name="Printing")
    team = Team.objects.create(name="Field Support")
    mailbox = mailbox_make(category=category, service=service, team=team)

    incident = Incident.objects.get(id=deliver(mailbox, mail()).ticket_id)

    assert (incident.category, incident.service, incident.assignment_group) == (category, service, team)


def test_it_creates_a_request_when_the_mailbox_says_so(requester):
    item = factories.item("New keyboard", fields=[{"name": "what", "label": "What", "type": "text",
                                                   "required": True}])
    mailbox = mailbox_make(creates=Mailbox.Creates.REQUEST, catalog_item=item)

    message = deliver(mailbox, mail(subject="A keyboard with a German layout", text="Please, by Friday."))

    assert message.state == State.PROCESSED, message.error
    assert message.ticket_kind == "request"
    request = ServiceRequest.objects.get(id=message.ticket_id)
    assert request.item == item and request.requester == requester
    assert request.title == "A keyboard with a German layout"
    assert "Please, by Friday." in request.description


def test_a_subject_loses_reply_prefixes_and_our_tags_in_the_title():
    assert title_of("Re: AW: Fwd: [INC0001234] WG: VPN down") == "VPN down"
    assert title_of("RE[2]: SV: printer") == "printer"
    assert title_of("") == "(no subject)"
    assert title_of("Re: ") == "(no subject)"


def test_attachments_are_kept_and_refused_ones_are_named(mailbox, requester):
    raw = mail(attachments=[("photo.png", png(), "image/png"),
                            ("setup.exe", b"MZ\x90\x00" + b"\x00" * 200, "application/octet-stream")])

    message = deliver(mailbox, raw)

    incident = Incident.objects.get(id=message.ticket_id)
    assert [a.filename for a in incident.attachments.all()] == ["photo.png"]
    assert "Not kept: setup.exe (type not accepted)" in incident.description


def test_a_second_process_changes_nothing(mailbox, requester):
    message = deliver(mailbox, mail())
    before = (Incident.objects.count(), TimelineEntry.objects.count(), OutboxMessage.objects.count())

    again = inbound_process(message_id=message.id)

    assert (again.state, again.attempts, again.ticket_id) == (State.PROCESSED, 1, message.ticket_id)
    assert (Incident.objects.count(), TimelineEntry.objects.count(), OutboxMessage.objects.count()) == before


def test_storing_queues_processing_in_the_outbox_and_a_known_uid_is_stored_once(mailbox):
    raw = mail()
    stored = inbound_store(mailbox=mailbox, raw=raw, source="imap", uidvalidity=7, uid=42)

    assert stored.state == State.NEW and stored.size == len(raw)
    assert stored.from_address == "alice@example.com" and stored.subject == "Printer on floor 2 jams"
    queued = OutboxMessage.objects.get(handler="email.inbound")
    assert queued.payload == {"message": stored.id}
    assert inbound_store(mailbox=mailbox, raw=raw, source="imap", uidvalidity=7, uid=42) is None
    assert InboundMessage.objects.count() == 1 and OutboxMessage.objects.filter(handler="email.inbound").count() == 1


# --- duplicates, loops and noise -------------------------------------------------------------------------


def test_the_same_message_id_twice_is_a_duplicate(mailbox, requester):
    raw = mail(message_id="<same-mail@example.com>")
    other = mailbox_make(name="Second", address="second@desk.example")

    first = deliver(mailbox, raw)
    second = deliver(other, raw)

    assert first.state == State.PROCESSED
    assert second.state == State.IGNORED
    assert second.reason == f"duplicate of message #{first.id}"
    assert Incident.objects.count() == 1


# Each case has one sign of machine mail only, and an ordinary subject: the reason names that detector.
@pytest.mark.parametrize(("headers", "detector"), [
    ({"Auto-Submitted": "auto-replied"}, "auto-reply"),
    ({"Precedence": "bulk"}, "bulk"),
    ({"List-Id": "<news.example.com>"}, "list"),
], ids=["auto-reply", "bulk", "list"])
def test_machine_mail_is_ignored_and_never_answered(mailbox, requester, headers, detector):
    message = deliver(mailbox, mail(subject="Printer on floor 2 jams", headers=headers))

    assert message.state == State.IGNORED
    assert message.reason == f"{detector}: machine mail is not answered"
    assert Incident.objects.count() == 0
    assert _mail_sends() == 0


# A bounce by its sender alone, or by its empty return path alone: no Auto-Submitted, no report part.
@pytest.mark.parametrize(("sender", "headers"), [
    ("Mail Delivery System <MAILER-DAEMON@mx.example.com>", {}),
    ("Mail System <mail@mx.example.com>", {"Return-Path": "<>"}),
], ids=["mailer-daemon", "empty-return-path"])
def test_a_bounce_is_ignored(mailbox, sender, headers):
    raw = mail(sender=sender, subject="Undelivered Mail Returned to Sender", headers=headers,
               text="This is the mail system at host mx.example.com. I'm sorry to have to inform you...")

    message = deliver(mailbox, raw)

    assert message.state == State.IGNORED
    assert message.reason == "bounce: machine mail is not answered"
    assert Incident.objects.count() == 0 and _mail_sends() == 0
    assert get_user_model().objects.filter(email__iendswith="@mx.example.com").count() == 0


def test_the_out_of_office_and_bounce_samples_are_ignored(mailbox, requester):
    for name in ("out_of_office.eml", "bounce.eml"):
        if not (SAMPLES / name).exists():
            pytest.fail(f"sample {name} missing from tests/email_channel/samples/")
        message = deliver(mailbox, sample(name))
        assert message.state == State.IGNORED, (name, message.state, message.error)
    assert Incident.objects.count() == 0 and _mail_sends() == 0


def test_one_of_our_own_notifications_is_ignored(mailbox, requester):
    message = deliver(mailbox, mail(headers={OUR_HEADER: "INC0001001"}))

    assert (message.state, message.reason) == (State.IGNORED, "one of our own notifications")
    assert Incident.objects.count() == 0 and _mail_sends() == 0


@pytest.mark.parametrize("sender", [DESK, "Desk <SERVICEDESK@localhost>", "Replies <replies@desk.example>"])
def test_mail_from_our_own_addresses_is_ignored(mailbox, settings, sender):
    settings.DEFAULT_FROM_EMAIL = "Servicedesk <servicedesk@localhost>"
    settings.EMAIL_REPLY_TO = "replies@desk.example"

    message = deliver(mailbox, mail(sender=sender))

    assert message.state == State.IGNORED and "our own address" in message.reason
    assert Incident.objects.count() == 0 and _mail_sends() == 0


def test_too_large_mail_is_kept_but_ignored(mailbox, requester, settings):
    settings.EMAIL_INBOUND_MAX_BYTES = 200
    raw = mail(text="x" * 500)

    message = deliver(mailbox, raw)

    assert message.state == State.IGNORED and message.reason.startswith("too large")
    assert bytes(message.raw) == raw
    assert Incident.objects.count() == 0


# --- who may write ---------------------------------------------------------------------------------------


def test_an_unknown_sender_gets_a_requester_account(mailbox, make_user):
    make_user("requester", username="jane.doe", email="jane@other.example")  # the username is taken

    message = deliver(mailbox, mail(sender='"Doe, Jane" <Jane.Doe@Example.com>'))

    assert message.state == State.PROCESSED, message.error
    user = Incident.objects.get(id=message.ticket_id).requester
    assert user.username == "jane.doe2"
    assert (user.email, user.first_name, user.last_name) == ("jane.doe@example.com", "Jane", "Doe")
    assert user.is_active and not user.has_usable_password()
    assert role_of(user) == Role.REQUESTER


def test_known_users_only_ignores_an_unknown_sender(requester):
    mailbox = mailbox_make(accept=Mailbox.Accept.KNOWN)

    stranger = deliver(mailbox, mail(sender="someone@else.example"))
    known = deliver(mailbox, mail(sender="alice@example.com"))

    assert (stranger.state, stranger.reason) == (State.IGNORED, "sender not accepted: unknown address")
    assert known.state == State.PROCESSED
    assert not get_user_model().objects.filter(email="someone@else.example").exists()


def test_without_account_creation_an_unknown_sender_is_ignored(db):
    mailbox = mailbox_make(create_accounts=False)

    message = deliver(mailbox, mail(sender="someone@else.example"))

    assert (message.state, message.reason) == (State.IGNORED, "sender not accepted: unknown address")


def test_domains_accept_their_senders_only(db):
    mailbox = mailbox_make(accept=Mailbox.Accept.DOMAINS, domains="example.com,\npartner.example")

    inside = deliver(mailbox, mail(sender="bea@example.com"))
    sub = deliver(mailbox, mail(sender="carl@eu.partner.example"))
    outside = deliver(mailbox, mail(sender="dan@elsewhere.example"))

    assert inside.state == sub.state == State.PROCESSED
    assert outside.state == State.IGNORED and outside.reason.startswith("sender not accepted: domain")


def test_a_disabled_account_is_not_accepted(mailbox, requester):
    requester.is_active = False
    requester.save(update_fields=["is_active"])

    message = deliver(mailbox, mail(sender="alice@example.com"))

    assert message.state == State.IGNORED and "disabled" in message.reason
    assert get_user_model().objects.filter(email__iexact="alice@example.com").count() == 1


def test_the_rate_limit_stops_a_storm_from_one_sender(requester, other_requester):
    mailbox = mailbox_make(rate_limit_per_hour=2)

    outcomes = [deliver(mailbox, mail(subject=f"Storm {n}")) for n in range(3)]
    other = deliver(mailbox, mail(sender="bob@example.com"))

    assert [m.state for m in outcomes] == [State.PROCESSED, State.PROCESSED, State.IGNORED]
    assert outcomes[2].reason.startswith("rate limited:")
    assert other.state == State.PROCESSED
    assert Incident.objects.count() == 3


def test_no_rate_limit_when_it_is_zero(requester):
    mailbox = mailbox_make(rate_limit_per_hour=0)

    assert all(deliver(mailbox, mail(subject=f"n{n}")).state == State.PROCESSED for n in range(3))


# --- replies ---------------------------------------------------------------------------------------------


def _first(mailbox, **kwargs):
    message = deliver(mailbox, mail(**kwargs))
    assert message.state == State.PROCESSED, message.error
    return Incident.objects.get(id=message.ticket_id)


def test_a_reply_with_the_subject_tag_becomes_a_public_comment(mailbox, requester):
    incident = _first(mailbox)
    text = ("It also jams with the new toner.\n\nOn Mon, 1 Jan, Service Desk wrote:\n> What did you try?\n"
            "> Regards")

    message = deliver(mailbox, mail(subject=f"Re: [{incident.number}] Printer on floor 2 jams", text=text))

    assert (message.state, message.action, message.ticket_id) == (State.PROCESSED, "replied", incident.id)
    entry = TimelineEntry.objects.get(id=message.entry_id)
    assert entry.kind == TimelineEntry.Kind.COMMENT and not entry.internal
    assert entry.author == requester
    assert entry.body.strip() == "It also jams with the new toner."
    assert entry.data.get("channel") == "email" and entry.data.get("mail") == message.id
    assert Incident.objects.count() == 1


def test_a_reply_threads_by_in_reply_to_without_a_tag(mailbox, requester):
    incident = _first(mailbox)
    root = thread_root("incident", incident.id)

    message = deliver(mailbox, mail(subject="Re: my printer", text="Still broken.",
                                    headers={"In-Reply-To": root, "References": root}))

    assert (message.action, message.ticket_number) == ("replied", incident.number)


def test_a_reply_with_attachments_keeps_them_on_the_comment(mailbox, requester):
    incident = _first(mailbox)

    message = deliver(mailbox, mail(subject=f"[{incident.number}]", text="",
                                    attachments=[("screen.png", png(), "image/png")]))

    assert message.action == "replied", (message.state, message.reason, message.error)
    assert [a.filename for a in incident.attachments.all()] == ["screen.png"]


def test_an_empty_reply_is_ignored(mailbox, requester):
    incident = _first(mailbox)
    entries = len(_timeline(incident))

    message = deliver(mailbox, mail(subject=f"Re: [{incident.number}]", text="\n  \n"))

    assert (message.state, message.reason) == (State.IGNORED, "empty reply")
    assert len(_timeline(incident)) == entries


def test_a_reply_from_a_stranger_opens_a_follow_up(mailbox, requester, other_requester):
    incident = _first(mailbox)

    message = deliver(mailbox, mail(sender="bob@example.com", subject=f"Re: [{incident.number}] Printer",
                                    text="Mine jams too."))

    assert message.action == "created" and message.ticket_id != incident.id
    follow_up = Incident.objects.get(id=message.ticket_id)
    assert follow_up.description.startswith(f"Follow-up to {incident.number}: ")
    assert follow_up.requester == other_requester
    assert follow_up.title == "Printer"


def test_an_agent_and_a_watcher_may_reply_by_mail(mailbox, requester, agent, other_requester):
    from servicedesk.watchers import watcher_add

    incident = _first(mailbox)
    watcher_add(ticket=incident, user=other_requester, by=agent)

    root = thread_root("incident", incident.id)
    by_agent = deliver(mailbox, mail(sender=agent.email, subject=f"Re: [{incident.number}]", text="Looking at it.",
                                     headers={"In-Reply-To": root, "References": root}))
    by_watcher = deliver(mailbox, mail(sender="bob@example.com", subject=f"[{incident.number}]", text="Same here"))

    assert by_agent.action == by_watcher.action == "replied"
    assert Incident.objects.count() == 1


def test_a_reply_to_a_closed_ticket_opens_a_follow_up(mailbox, requester, agent):
    from incidents.services import incident_cancel

    incident = _first(mailbox)
    incident_cancel(incident_id=incident.id, actor=agent, reason="duplicate")

    message = deliver(mailbox, mail(subject=f"Re: [{incident.number}] Printer", text="Why was it closed?"))

    assert message.action == "created"
    assert Incident.objects.get(id=message.ticket_id).description.startswith(f"Follow-up to {incident.number}: ")


def test_a_reply_reopens_a_resolved_incident(mailbox, requester, agent):
    from incidents.services import incident_resolve
    from incidents.states import Status

    incident = _first(mailbox)
    incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed", resolution_notes="New toner")

    message = deliver(mailbox, mail(subject=f"Re: [{incident.number}]", text="It jams again."))

    assert message.action == "replied"
    incident.refresh_from_db()
    assert incident.status != Status.RESOLVED


# --- watchers from Cc ------------------------------------------------------------------------------------


def test_copied_people_become_watchers(mailbox, requester, other_requester):
    raw = mail(cc=f"Bob <bob@example.com>, Carla New <carla@example.org>, {DESK}, alice@example.com")

    message = deliver(mailbox, raw)

    incident = Incident.objects.get(id=message.ticket_id)
    watchers = Watcher.objects.filter(content_type=ContentType.objects.get_for_model(incident), object_id=incident.id)
    emails = sorted(w.user.email for w in watchers)
    assert emails == ["bob@example.com", "carla@example.org"]
    carla = get_user_model().objects.get(email="carla@example.org")
    assert (carla.first_name, carla.last_name) == ("Carla", "New") and role_of(carla) == Role.REQUESTER


def test_copied_strangers_are_not_watchers_without_account_creation(requester):
    mailbox = mailbox_make(accept=Mailbox.Accept.KNOWN)

    message = deliver(mailbox, mail(cc="stranger@else.example"))

    assert message.state == State.PROCESSED
    assert not Watcher.objects.exists()
    assert not get_user_model().objects.filter(email="stranger@else.example").exists()


# --- failures and retry ----------------------------------------------------------------------------------


def test_a_failing_mail_is_kept_with_its_error_and_processed_again_after_a_fix(requester, admin_user):
    item = factories.item("Laptop", fields=[
        {"name": "model", "label": "Model", "type": "choice", "required": True, "choices": "A\nB"},
        {"name": "when", "label": "When", "type": "date", "required": True},
    ])
    mailbox = mailbox_make(creates=Mailbox.Creates.REQUEST, catalog_item=item)
    raw = mail(subject="I need a laptop")

    message = deliver(mailbox, raw)

    assert message.state == State.FAILED
    assert message.error.startswith("InvalidInput: ") and "needs answers a mail cannot give" in message.error
    assert bytes(message.raw) == raw
    assert ServiceRequest.objects.count() == 0
    assert not get_user_model().objects.exclude(id__in=[requester.id, admin_user.id]).exists()
    assert inbound_process(message_id=message.id).state == State.FAILED  # failed stays failed

    item.fields.update(required=False)  # the fix
    queued = OutboxMessage.objects.filter(handler="email.inbound").count()
    retried = inbound_retry(message_id=message.id, by=admin_user)
    assert (retried.state, retried.error) == (State.NEW, "")
    assert OutboxMessage.objects.filter(handler="email.inbound").count() == queued + 1

    done = inbound_process(message_id=message.id)
    assert done.state == State.PROCESSED and done.attempts == 2
    assert ServiceRequest.objects.get(id=done.ticket_id).title == "I need a laptop"


def test_retry_leaves_a_mail_that_did_not_fail_alone(mailbox, requester, admin_user):
    message = deliver(mailbox, mail())

    assert inbound_retry(message_id=message.id, by=admin_user).state == State.PROCESSED


def test_mail_that_is_not_a_mail_fails_and_is_kept(mailbox):
    message = deliver(mailbox, b"\x00\x01 not a mail at all")

    assert message.state == State.FAILED and message.error.startswith("MailUnreadable")


# --- concurrency -----------------------------------------------------------------------------------------


def _race(targets):
    barrier = threading.Barrier(len(targets))
    results, errors = [], []

    def run(message_id):
        try:
            barrier.wait(timeout=10)
            results.append(inbound_process(message_id=message_id))
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(message_id,)) for message_id in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_two_processes_racing_on_one_mail_make_one_ticket(requester):
    mailbox = mailbox_make()
    stored = inbound_store(mailbox=mailbox, raw=mail(), source="pipe")

    _race([stored.id, stored.id, stored.id])

    stored.refresh_from_db()
    assert stored.state == State.PROCESSED and stored.attempts == 1
    assert Incident.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_copies_of_one_mail_processed_at_once_make_one_ticket(requester):
    raw = mail(message_id="<copy@example.com>")
    first = inbound_store(mailbox=mailbox_make(), raw=raw, source="pipe")
    second = inbound_store(mailbox=mailbox_make(name="Other", address="other@desk.example"), raw=raw, source="imap",
                           uidvalidity=1, uid=1)

    _race([first.id, second.id])

    states = sorted(InboundMessage.objects.values_list("state", flat=True))
    assert states == [State.IGNORED, State.PROCESSED]
    assert InboundMessage.objects.get(state=State.IGNORED).reason.startswith("duplicate of message #")
    assert Incident.objects.count() == 1


# --- the MIME samples (tests/email_channel/samples/) -----------------------------------------------------


def test_the_attachments_sample_becomes_an_incident_with_its_files(mailbox):
    message = deliver(mailbox, sample("attachments.eml"))

    assert message.state == State.PROCESSED, message.error
    incident = Incident.objects.get(id=message.ticket_id)
    assert incident.requester.email == "anna.schmidt@example.org"
    assert incident.title == "Rechnung fehlt im Portal"
    names = sorted(a.filename for a in incident.attachments.all())
    assert "logo.png" in names and any(name.endswith(".pdf") for name in names) and len(names) == 3
    assert not Watcher.objects.exists()  # she copied herself: the requester is no watcher


@pytest.mark.parametrize("name", ["bulk.eml", "list.eml"])
def test_the_bulk_and_list_samples_are_ignored(mailbox, name):
    message = deliver(mailbox, sample(name))

    assert message.state == State.IGNORED and ("bulk" in message.reason or "list" in message.reason)
    assert Incident.objects.count() == 0 and _mail_sends() == 0


def test_the_gmail_reply_sample_threads_without_its_quote(mailbox, make_user):
    jane = make_user("requester", username="jane", email="jane.doe@example.com")
    incident = _first(mailbox, sender="jane.doe@example.com", subject="Printer prints blank pages")
    raw = sample("reply_gmail.eml").replace(b"INC0001001", incident.number.encode())

    message = deliver(mailbox, raw)

    assert (message.action, message.ticket_id) == ("replied", incident.id)
    entry = TimelineEntry.objects.get(id=message.entry_id)
    assert entry.author == jane
    assert entry.body.startswith("Thanks") and "Reply above this line" not in entry.body and ">" not in entry.body


def test_the_html_only_sample_opens_an_incident_with_its_text(mailbox):
    message = deliver(mailbox, sample("html_only.eml"))

    incident = Incident.objects.get(id=message.ticket_id)
    assert incident.title.startswith("VPN")
    assert "Hello," in incident.description and "Renée O’Brien" in incident.description
    assert not any(tag in incident.description for tag in ("<div", "<p", "<style", "javascript:"))


# --- review fixes: poison mail, staff replies, accounts, retry, dedupe, Cc cap ---------------------------


def _refuse_in_db(condition: str, name: str = "test_refuse") -> None:
    """A CHECK constraint standing for "something in this mail the database refuses" (real PostgreSQL; the
    test's transaction rolls it back)."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE email_channel_inboundmessage ADD CONSTRAINT {name} CHECK ({condition})")


def test_nul_and_other_controls_never_reach_the_database(mailbox, requester):
    raw = (b"From: =?utf-8?q?Alice=00_Able?= <alice@example.com>\r\nTo: support@desk.example\r\n"
           b"Subject: =?utf-8?q?Printer=00_on_floor=07_2?=\r\nMessage-ID: <nul=00@example.com>\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nIt jams\x00 on\x1b every page.\r\n")

    message = deliver(mailbox, raw)

    assert message.state == State.PROCESSED, message.error
    assert message.subject == "Printer on floor 2"
    incident = Incident.objects.get(id=message.ticket_id)
    assert incident.title == "Printer on floor 2"
    assert "\x00" not in incident.description and "It jams on every page." in incident.description
    assert bytes(message.raw) == raw  # the raw mail stays as it came


def test_a_huge_non_ascii_message_id_is_cut_and_still_finds_its_duplicate(requester):
    from email_channel.processing import MESSAGE_ID_MAX

    local = "".join(chr(0x4E00 + (n * 7919) % 20000) for n in range(990))  # ~3 KB in UTF-8: over a btree row
    raw = (f"From: alice@example.com\r\nTo: {DESK}\r\nSubject: Printer\r\nMessage-ID: <{local}@example.com>\r\n"
           f"\r\nIt jams.\r\n").encode()

    first = deliver(mailbox_make(), raw)
    second = deliver(mailbox_make(name="Second", address="second@desk.example"), raw)

    assert first.state == State.PROCESSED, first.error
    assert first.message_id == local[:MESSAGE_ID_MAX] and len(first.message_id) == MESSAGE_ID_MAX == 250
    assert (second.state, second.reason) == (State.IGNORED, f"duplicate of message #{first.id}")


def test_a_mail_the_database_refuses_is_kept_raw_as_failed_and_can_be_processed_again(mailbox, requester,
                                                                                      admin_user):
    from email_channel.processing import inbound_store_safely

    _refuse_in_db("subject NOT LIKE '%poison%'")
    raw = mail(subject="A poison subject")

    message = inbound_store_safely(mailbox=mailbox, raw=raw, source="pipe")

    assert message.state == State.FAILED and bytes(message.raw) == raw and message.size == len(raw)
    assert message.error.startswith("not stored as it came: IntegrityError")
    assert (message.subject, message.message_id, message.from_address) == ("", "", "")
    assert not OutboxMessage.objects.filter(handler="email.inbound").exists()  # nothing queued for it


def test_a_staff_reply_by_subject_tag_alone_is_ignored(mailbox, requester, agent):
    incident = _first(mailbox)
    entries = len(_timeline(incident))

    forged = deliver(mailbox, mail(sender=agent.email, subject=f"Re: [{incident.number}] Printer",
                                   text="Closing this, we never fix printers."))

    assert forged.state == State.IGNORED
    assert forged.reason.startswith(f"staff reply not taken: the subject tag [{incident.number}] alone")
    assert len(_timeline(incident)) == entries and Incident.objects.count() == 1


def test_a_staff_reply_to_one_of_our_sent_mails_is_taken(mailbox, requester, agent):
    from servicedesk.notifications import email_message_id

    incident = _first(mailbox)
    ack = OutboxMessage.objects.filter(handler="email.send", payload__thread__id=incident.id).latest("id")

    message = deliver(mailbox, mail(sender=agent.email, subject="Re: your printer", text="On my way.",
                                    headers={"In-Reply-To": email_message_id(ack)}))

    assert (message.action, message.ticket_id) == ("replied", incident.id), (message.reason, message.error)
    assert TimelineEntry.objects.get(id=message.entry_id).author == agent


def test_an_ignored_copy_is_no_duplicate_for_a_mailbox_that_accepts_it(db):
    raw = mail(sender="Newcomer <new@else.example>", message_id="<policy@else.example>")
    strict = mailbox_make(name="Staff only", address="staff@desk.example", accept=Mailbox.Accept.KNOWN)
    open_box = mailbox_make(name="Public", address="public@desk.example")

    refused = deliver(strict, raw)
    taken = deliver(open_box, raw)

    assert (refused.state, refused.reason) == (State.IGNORED, "sender not accepted: unknown address")
    assert taken.state == State.PROCESSED and taken.action == "created", taken.reason
    again = deliver(strict, raw)  # a processed copy still makes a duplicate
    assert (again.state, again.reason) == (State.IGNORED, f"duplicate of message #{taken.id}")


def test_a_rate_limited_mail_is_processed_again_by_hand_later(requester, admin_user):
    from datetime import timedelta

    mailbox = mailbox_make(rate_limit_per_hour=1)
    first = deliver(mailbox, mail(subject="One"))
    limited = deliver(mailbox, mail(subject="Two"))
    assert limited.state == State.IGNORED and limited.reason.startswith("rate limited")

    # The hour passes.
    InboundMessage.objects.filter(id=first.id).update(received_at=first.received_at - timedelta(hours=2))
    retried = inbound_retry(message_id=limited.id, by=admin_user)
    assert (retried.state, retried.reason) == (State.NEW, "")
    done = inbound_process(message_id=limited.id)

    assert done.state == State.PROCESSED and Incident.objects.get(id=done.ticket_id).title == "Two"


def test_copied_addresses_over_the_limit_are_left_out_and_named(requester, settings):
    settings.EMAIL_INBOUND_MAX_WATCHERS = 2
    cc = ", ".join(f"person{n}@example.org" for n in range(1, 6))

    message = deliver(mailbox_make(), mail(cc=f"{DESK}, alice@example.com, {cc}"))

    assert message.state == State.PROCESSED, message.error
    incident = Incident.objects.get(id=message.ticket_id)
    watchers = Watcher.objects.filter(content_type=ContentType.objects.get_for_model(incident), object_id=incident.id)
    assert sorted(w.user.email for w in watchers) == ["person1@example.org", "person2@example.org"]
    assert not get_user_model().objects.filter(email__in=["person3@example.org", "person5@example.org"]).exists()
    assert message.reason == ("Cc: 3 more addresses not made watchers (limit 2): person3@example.org, "
                              "person4@example.org, person5@example.org")


@pytest.mark.django_db(transaction=True)
def test_a_username_taken_between_check_and_insert_moves_on_and_touches_nobody():
    """An admin creates "carla" while a mail from carla@new.example is being processed: the mail's INSERT waits
    for the admin's transaction and then must neither fail nor take over (or demote) the admin's account."""
    from servicedesk.services import user_provision

    mailbox = mailbox_make()
    stored = inbound_store(mailbox=mailbox, raw=mail(sender="Carla New <carla@new.example>"), source="pipe")
    inserted, errors = threading.Event(), []

    def admin_creates_carla():
        try:
            from django.db import transaction

            with transaction.atomic():
                user_provision(username="carla", role=Role.ADMIN, email="carla@corp.example")
                inserted.set()
                # Commit only once the mail's INSERT waits for this row (PostgreSQL shows it waiting on a lock).
                with connection.cursor() as cursor:
                    for _ in range(200):
                        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                       "AND datname = current_database()")
                        if cursor.fetchone()[0]:
                            break
                        threading.Event().wait(0.05)
                    else:
                        errors.append("the mail never waited for the admin's insert")
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)
            inserted.set()
        finally:
            connection.close()

    admin = threading.Thread(target=admin_creates_carla)
    admin.start()
    assert inserted.wait(timeout=20)
    message = inbound_process(message_id=stored.id)
    admin.join(timeout=30)

    assert not errors, errors
    assert message.state == State.PROCESSED, message.error
    User = get_user_model()
    carla_admin = User.objects.get(username="carla")
    assert (carla_admin.email, role_of(carla_admin), carla_admin.is_staff, carla_admin.is_superuser) == \
        ("carla@corp.example", Role.ADMIN, True, True)
    new = Incident.objects.get(id=message.ticket_id).requester
    assert (new.username, new.email, role_of(new)) == ("carla2", "carla@new.example", Role.REQUESTER)
    assert not new.has_usable_password()


@pytest.mark.django_db(transaction=True)
def test_two_mails_copying_one_new_address_at_once_make_one_account(requester, other_requester):
    mailbox = mailbox_make()
    first = inbound_store(mailbox=mailbox, raw=mail(cc="Dave New <dave@new.example>"), source="pipe")
    second = inbound_store(mailbox=mailbox, raw=mail(sender="bob@example.com", cc="dave@new.example"), source="pipe")

    _race([first.id, second.id])

    dave = get_user_model().objects.get(email="dave@new.example")  # exactly one
    assert role_of(dave) == Role.REQUESTER
    assert Watcher.objects.filter(user=dave).count() == 2


def _internal_alert(incident, agent):
    """An agent-only mail about the incident ("Unassigned P1"), as sent: its outbox message."""
    from incidents.services.notify import notify_people

    OutboxMessage.objects.filter(handler="email.send").delete()
    notify_people(incident, to=[agent.email], audience="agent", headline="Unassigned P1")
    return OutboxMessage.objects.get(handler="email.send")


def _answer_to(sent, **kwargs) -> bytes:
    from servicedesk.notifications import email_message_id

    ids = email_message_id(sent)
    root = thread_root("incident", sent.payload["thread"]["id"])
    return mail(headers={"In-Reply-To": ids, "References": f"{root} {ids}"}, **kwargs)


def test_a_staff_answer_to_agent_only_mail_is_an_internal_note_mailed_to_nobody(mailbox, requester, make_user):
    incident = _first(mailbox)
    lead = make_user("manager", username="lead")
    alert = _internal_alert(incident, lead)
    OutboxMessage.objects.filter(handler="email.send").delete()

    message = deliver(mailbox, _answer_to(alert, sender=lead.email, subject="Re: Unassigned P1",
                                          text="Why is this still open? This customer always whines."))

    assert (message.state, message.action, message.ticket_id) == (State.PROCESSED, "replied", incident.id), \
        (message.reason, message.error)
    entry = TimelineEntry.objects.get(id=message.entry_id)
    assert entry.internal and entry.kind == TimelineEntry.Kind.NOTE and entry.author == lead
    assert not OutboxMessage.objects.filter(handler="email.send", payload__to__contains=[requester.email]).exists()


def test_a_non_staff_answer_to_agent_only_mail_is_no_reply(mailbox, requester, agent):
    incident = _first(mailbox)
    alert = _internal_alert(incident, agent)
    entries = len(_timeline(incident))

    message = deliver(mailbox, _answer_to(alert, subject=f"Re: [{incident.number}] Unassigned P1",
                                          text="Someone forwarded me this."))

    assert (message.state, message.action) == (State.IGNORED, "")
    assert message.reason.startswith("an answer to a mail for agents only")
    assert Incident.objects.count() == 1 and len(_timeline(incident)) == entries
