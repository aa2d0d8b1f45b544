"""Second review of the email channel, kernel side: a requester's mail never carries an agent's or a later
mail's Message-ID (R4: only the public mail that raised the ticket is answered), the requester's words passed
on to agents are public mail (R2), and every recipient gets a mail of its own (S1): To: holds only their
address, each mail its own Message-ID that still leads back to the ticket; a failure part-way sends only the
rest on the retry. Checked on locmem and on the bytes a real SMTP server received."""

import email
import email.policy

import pytest
from django.core import mail

from servicedesk import outbox
from servicedesk.mailthread import ThreadRef, thread_of, thread_root
from servicedesk.models import OutboxMessage
from servicedesk.notifications import email_message_id
from servicedesk.registry import MailIntake, registry
from tests.outbox_mail import run_mail
from tests.peers import SmtpSink

pytestmark = pytest.mark.django_db

ORIGIN = "CAF+origin.1@mail.example.com"
AGENT_ID = "agent.reply.7@staff-mail.example.net"
LATER_ID = "later.reply.9@mail.example.com"




def raised_by_mail(kind: str, requester):
    intake = MailIntake(requester=requester, title="Laptop will not boot", body="Black screen.",
                        data={"channel": "email", "mail": 1, "message_id": ORIGIN})
    if kind == "request":
        from tests.requests_app.factories import item

        wanted = item("Repair", fields=[{"name": "what", "label": "What", "type": "long_text", "required": True}])
        intake = MailIntake(requester=requester, title=intake.title, body=intake.body, catalog_item_id=wanted.id,
                            data=intake.data)
    return registry.ticket_kind_named(kind).create_from_mail(intake=intake)


@pytest.mark.parametrize("kind", ["incident", "request"])
def test_the_requesters_mail_answers_only_the_mail_that_raised_the_ticket(kind, requester, agent):
    ticket = raised_by_mail(kind, requester)
    replies = registry.ticket_kind_named(kind)
    # An agent's answer by mail to agent-only mail (an internal note), an agent's public reply by mail, and the
    # requester's later mail: none of their Message-IDs may reach the requester's headers.
    replies.reply(ticket=ticket, author=agent, body="Lead: check the warranty first",
                  data={"channel": "email", "mail": 2, "message_id": AGENT_ID}, internal=True)
    replies.reply(ticket=ticket, author=requester, body="Still black",
                  data={"channel": "email", "mail": 3, "message_id": LATER_ID})
    replies.reply(ticket=ticket, author=agent, body="Please hold the power button for 30 seconds",
                  data={"channel": "email", "mail": 4, "message_id": "agent.public.8@staff-mail.example.net"})
    queued = run_mail()
    to_requester = [m for m in mail.outbox if m.to == [requester.email]]
    assert len(to_requester) >= 2  # the acknowledgement and the agent's reply
    root = thread_root(kind, ticket.id)
    for message in mail.outbox:
        headers = " ".join(str(value) for value in message.extra_headers.values())
        assert "staff-mail.example.net" not in headers and LATER_ID not in headers
    for message in to_requester:
        assert message.extra_headers["In-Reply-To"] == f"<{ORIGIN}>"
        assert message.extra_headers["References"] == f"<{ORIGIN}> {root}"
    assert any(q.payload["thread"]["internal"] is False for q in queued)


def test_a_ticket_whose_first_mail_entry_is_an_internal_note_answers_the_root_alone(incident_factory, agent,
                                                                                   requester):
    incident = incident_factory()  # raised on the portal: no mail started it
    registry.ticket_kind_named("incident").reply(ticket=incident, author=agent, body="Internal",
                                                 data={"channel": "email", "message_id": AGENT_ID}, internal=True)
    registry.ticket_kind_named("incident").reply(ticket=incident, author=agent, body="Public answer")
    run_mail()
    assert [m.to for m in mail.outbox] == [[requester.email], [requester.email]]
    for message in mail.outbox:
        assert message.extra_headers["In-Reply-To"] == message.extra_headers["References"] == thread_root(
            "incident", incident.id)


def test_the_requesters_reply_to_a_request_reaches_the_team_as_public_mail(requester, agent, make_user):
    from requests_app.services import request_assignee_set, request_comment_add
    from servicedesk.models import Team

    made = raised_by_mail("request", requester)
    fixer = make_user("agent", username="fran", teams=["Service Desk"])
    request_assignee_set(request_id=made.id, actor=agent, assignee=fixer,
                         assignment_group=Team.objects.get(name="Service Desk"))
    OutboxMessage.objects.all().delete()
    request_comment_add(request=made, author=requester, body="Any news?")
    [passed_on] = OutboxMessage.objects.filter(handler="email.send")
    assert passed_on.payload["to"] == [fixer.email] and passed_on.payload["context"]["audience"] == "agent"
    assert passed_on.payload["thread"]["internal"] is False
    run_mail()
    # An answer by mail to it names the request as public: it reaches the requester.
    assert thread_of([mail.outbox[0].extra_headers["Message-ID"], thread_root("request", made.id)]) == ThreadRef(
        "request", made.id, False, "outbox")


def test_each_recipient_gets_a_mail_of_its_own_on_the_wire(smtp, settings, incident_factory, agent, requester,
                                                           make_user):
    from incidents.services import incident_comment_add
    from servicedesk.watchers import watcher_add

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    incident = incident_factory()
    first = make_user("requester", username="wendy", email="wendy@outside.example")
    second = make_user("requester", username="walt", email="walt@elsewhere.example")
    for person in (first, second):
        watcher_add(ticket=incident, user=person, by=agent)
    OutboxMessage.objects.all().delete()
    incident_comment_add(incident=incident, author=agent, body="A part is on order")
    queued = run_mail()
    everyone = {requester.email, first.email, second.email}
    recipients_per_message = [set(q.payload["to"]) for q in queued]
    assert set().union(*recipients_per_message) == everyone
    assert any(len(to) == 2 for to in recipients_per_message)  # the two watchers share one outbox message...
    assert len(smtp.messages) == 3  # ...but each of the three gets a mail of its own
    ids = set()
    for received in smtp.messages:
        parsed = email.message_from_string(received["data"], policy=email.policy.default)
        assert len(received["to"]) == 1
        [address] = received["to"]
        assert str(parsed["To"]) == address and parsed["Cc"] is None and parsed["Bcc"] is None
        others = everyone - {address}
        assert not any(other in received["data"] for other in others)  # nobody else's address anywhere
        ids.add(parsed["Message-ID"])
        assert thread_of([parsed["Message-ID"]]) == ThreadRef("incident", incident.id, False, "outbox")
    assert len(ids) == 3
    shared = next(q for q in queued if len(q.payload["to"]) == 2)
    assert {email_message_id(shared, recipient=i) for i in range(2)} <= ids


def _three_recipient_mail(settings, incident_factory):
    from incidents.services.notify import incident_payload
    from servicedesk.notifications import email_enqueue

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    incident = incident_factory()
    OutboxMessage.objects.all().delete()
    email_enqueue(template="incident_update", to=["a@one.example", "b@two.example", "c@three.example"],
                  context={"incident": incident_payload(incident), "headline": "x",
                           "audience": "agent"}, thread=incident, internal=True)
    return OutboxMessage.objects.get()


def test_a_recipient_refused_for_now_is_tried_again_alone_after_the_others_had_theirs(settings, incident_factory):
    message = _three_recipient_mail(settings, incident_factory)
    with SmtpSink(refuse="b@two.example") as sink:
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        assert outbox.outbox_process(message.id) == "pending"
        assert [m["to"] for m in sink.messages] == [["a@one.example"], ["c@three.example"]]
        message.refresh_from_db()
        assert message.payload["sent"] == [0, 2] and "451" in message.last_error
        sink.refuse = ""
        OutboxMessage.objects.filter(id=message.id).update(next_attempt_at=message.created_at)
        assert outbox.outbox_process(message.id) == "done"
    # Each got exactly one mail: the retry went to b@ alone.
    assert [m["to"] for m in sink.messages] == [["a@one.example"], ["c@three.example"], ["b@two.example"]]


def test_a_recipient_refused_for_good_is_left_out_and_the_others_get_theirs(settings, incident_factory):
    """A team member whose mailbox is gone (550) must not keep the rest of the team from the mail."""
    message = _three_recipient_mail(settings, incident_factory)
    with SmtpSink(reject="a@one.example") as sink:
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        assert outbox.outbox_process(message.id) == "done"
    assert [m["to"] for m in sink.messages] == [["b@two.example"], ["c@three.example"]]
    message.refresh_from_db()
    assert message.payload["sent"] == [1, 2] and "a@one.example: 550" in message.payload["refused"]["0"]


def test_a_mail_every_recipient_refuses_for_good_fails_at_once(settings, incident_factory):
    from incidents.services.notify import incident_payload
    from servicedesk.notifications import email_enqueue

    _three_recipient_mail(settings, incident_factory)  # the SMTP settings
    incident = incident_factory()
    OutboxMessage.objects.all().delete()
    email_enqueue(template="incident_update", to=["a@one.example"], context={
        "incident": incident_payload(incident), "headline": "x", "audience": "agent"}, thread=incident)
    message = OutboxMessage.objects.get()
    with SmtpSink(reject="a@one.example") as sink:
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        assert outbox.outbox_process(message.id) == "failed"
    message.refresh_from_db()
    assert sink.messages == [] and "every recipient was refused" in message.last_error and message.attempts == 1
