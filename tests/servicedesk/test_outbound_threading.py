"""Outgoing ticket mail threads as a mail client expects: every mail of one ticket carries its own Message-ID
and answers the same root (In-Reply-To, References), the number tag is in the subject, machines are told not
to auto-reply, and the reply marker stands on top of the text and the HTML. Checked on Django's locmem outbox
and on the bytes a real SMTP server (the local sink) received, parsed with the standard library."""

import email
import email.policy

import pytest
from django.core import mail

from incidents.services import incident_comment_add
from servicedesk import outbox
from servicedesk.mailthread import REPLY_MARKER, ThreadRef, thread_of, thread_root
from servicedesk.models import OutboxMessage
from servicedesk.notifications import email_enqueue, email_message_id

pytestmark = pytest.mark.django_db


def run_mail() -> list[OutboxMessage]:
    """Send every pending mail the way the worker does; the messages, oldest first."""
    sent = []
    for message in OutboxMessage.objects.filter(handler="email.send", state="pending").order_by("id"):
        assert outbox.outbox_process(message.id) == "done", message.last_error
        sent.append(message)
    return sent


def html_of(message) -> str:
    return next(body for body, kind in message.alternatives if kind == "text/html")


def test_an_incidents_mails_share_one_root_each_with_its_own_id(incident_factory, agent, requester, settings):
    settings.EMAIL_REPLY_TO = ""
    incident = incident_factory()
    incident_comment_add(incident=incident, author=agent, body="Have you tried turning it off and on?")
    messages = run_mail()
    assert len(mail.outbox) == len(messages) == 2
    root = thread_root("incident", incident.id)
    created, reply = mail.outbox
    assert created.to == reply.to == [requester.email]
    for message, queued in zip(mail.outbox, messages, strict=True):
        headers = message.extra_headers
        assert headers["Message-ID"] == email_message_id(queued)
        assert headers["In-Reply-To"] == headers["References"] == root
        assert headers["Auto-Submitted"] == "auto-generated"
        assert headers["X-Auto-Response-Suppress"] == "All"
        assert headers["X-Servicedesk-Ticket"] == incident.number
        assert message.subject.startswith(f"[{incident.number}] ")
        assert message.subject.count(f"[{incident.number}]") == 1  # the template's own tag is not doubled
        assert message.body.startswith(f"{REPLY_MARKER}\n\n")
        assert REPLY_MARKER in html_of(message)
        assert message.reply_to == []
        # A reply to any of them leads back to the incident, by its Message-ID or by the root.
        assert thread_of([headers["Message-ID"]]) == ThreadRef("incident", incident.id, False)
    assert created.extra_headers["Message-ID"] != reply.extra_headers["Message-ID"]
    assert f"/portal/incidents/{incident.number}/" in reply.body  # the portal link stays


def test_reply_to_is_set_when_configured(incident_factory, settings):
    settings.EMAIL_REPLY_TO = "help@desk.example.org"
    incident_factory()
    run_mail()
    assert mail.outbox[0].reply_to == ["help@desk.example.org"]


def test_mail_about_no_ticket_only_says_it_is_automatic(settings):
    settings.EMAIL_REPLY_TO = "help@desk.example.org"
    email_enqueue(template="password_reset_link", to=["a@example.com"],
                  context={"url": "https://x/reset", "name": "A", "number": ""})
    run_mail()
    message = mail.outbox[0]
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"
    for header in ("In-Reply-To", "References", "X-Auto-Response-Suppress", "X-Servicedesk-Ticket"):
        assert header not in message.extra_headers
    assert REPLY_MARKER not in message.body and REPLY_MARKER not in html_of(message)
    assert message.reply_to == []
    assert "thread" not in OutboxMessage.objects.get().payload


def test_a_requests_mail_is_threaded_on_the_request(requester, settings):
    from requests_app.services import request_submit
    from tests.requests_app.factories import item

    made = request_submit(item=item("Headset"), answers={}, requester=requester, created_by=requester)
    queued = OutboxMessage.objects.get(handler="email.send")
    assert queued.payload["thread"] == {"kind": "request", "id": made.id, "number": made.number,
                                       "title": made.title, "internal": False}
    run_mail()
    headers = mail.outbox[0].extra_headers
    assert headers["References"] == thread_root("request", made.id)
    assert made.number in html_of(mail.outbox[0])  # the layout's reference names the request


def test_the_bytes_on_the_wire_thread_as_a_mail_client_reads_them(smtp, settings, incident_factory, agent,
                                                                   requester):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_REPLY_TO = "help@desk.example.org"
    incident = incident_factory()
    incident_comment_add(incident=incident, author=agent, body="Fixed the paper tray.")
    queued = run_mail()
    assert len(smtp.messages) == 2
    root = thread_root("incident", incident.id)
    parsed = [email.message_from_string(m["data"], policy=email.policy.default) for m in smtp.messages]
    ids = set()
    for message, sent in zip(parsed, queued, strict=True):
        assert message["Message-ID"] == email_message_id(sent)
        ids.add(message["Message-ID"])
        assert message["In-Reply-To"] == root
        assert message["References"] == root
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["X-Auto-Response-Suppress"] == "All"
        assert message["X-Servicedesk-Ticket"] == incident.number
        assert message["Reply-To"] == "help@desk.example.org"
        assert str(message["Subject"]).startswith(f"[{incident.number}] ")
        text = message.get_body(preferencelist=("plain",)).get_content()
        html = message.get_body(preferencelist=("html",)).get_content()
        assert text.startswith(REPLY_MARKER)
        assert REPLY_MARKER in html
    assert len(ids) == 2
    # What a mail client's reply would carry names the incident.
    assert thread_of([parsed[1]["Message-ID"], root]) == ThreadRef("incident", incident.id, False)
    assert "Fixed the paper tray." in parsed[1].get_body(preferencelist=("plain",)).get_content()
    assert {m["to"][0] for m in smtp.messages} == {requester.email}
