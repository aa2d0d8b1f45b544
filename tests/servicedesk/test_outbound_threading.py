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
from tests.outbox_mail import run_mail

pytestmark = pytest.mark.django_db




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
        assert thread_of([headers["Message-ID"]]) == ThreadRef("incident", incident.id, False, "outbox")
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
    assert thread_of([parsed[1]["Message-ID"], root]) == ThreadRef("incident", incident.id, False, "outbox")
    assert "Fixed the paper tray." in parsed[1].get_body(preferencelist=("plain",)).get_content()
    assert {m["to"][0] for m in smtp.messages} == {requester.email}


# --- one conversation in the requester's client (review item 4) ------------------------------------------


def test_a_mailed_incidents_public_mails_share_one_subject_and_answer_the_requesters_own_mail(
        requester, agent, make_user, settings, django_assert_max_num_queries):
    from incidents.services import incident_assign, incident_transition
    from incidents.states import Status
    from servicedesk.registry import MailIntake, registry
    from servicedesk.watchers import watcher_add

    settings.EMAIL_REPLY_TO = ""
    origin = "CAF+x7.origin-1@mail.example.com"
    incident = registry.ticket_kind_named("incident").create_from_mail(intake=MailIntake(
        requester=requester, title="VPN drops every few minutes", body="Since this morning.",
        data={"channel": "email", "mail": 1, "message_id": origin}))
    watcher = make_user("requester", username="wendy")
    watcher_add(ticket=incident, user=watcher, by=agent)
    colleague = make_user("agent", username="carl", teams=["Service Desk"])
    incident_assign(incident_id=incident.id, actor=agent, assignee=colleague)  # "Assigned to you": internal
    incident_comment_add(incident=incident, author=requester, body="Also on the wired network")  # to carl: public
    incident_comment_add(incident=incident, author=agent, body="Please restart the client")
    incident_transition(incident_id=incident.id, to=Status.RESOLVED, actor=agent, resolution_code="fixed",
                        resolution_notes="A new client version")
    queued = list(OutboxMessage.objects.filter(handler="email.send", state="pending").order_by("id"))
    for message in queued:
        with django_assert_max_num_queries(8):  # claim, the origin (one query), mark done...
            assert outbox.outbox_process(message.id) == "done", message.last_error
    root = thread_root("incident", incident.id)
    public = [m for m, q in zip(mail.outbox, queued, strict=True) if not q.payload["thread"]["internal"]]
    internal = [m for m, q in zip(mail.outbox, queued, strict=True) if q.payload["thread"]["internal"]]
    # Carl gets the requester's words as public mail: his answer by mail reaches the requester (review 2, R2).
    assert {tuple(m.to) for m in public} == {(requester.email,), (watcher.email,), (colleague.email,)}
    assert len(public) >= 4 and internal  # the ack, the replies, "Resolved"; and the desk's own mail
    # Gmail and Outlook keep one conversation: one subject...
    assert {m.subject for m in public} == {f"[{incident.number}] VPN drops every few minutes"}
    # ...and every one answers the requester's own first mail, then the ticket's root.
    for message in public:
        assert message.extra_headers["In-Reply-To"] == f"<{origin}>"
        assert message.extra_headers["References"] == f"<{origin}> {root}"
    ack = next(m for m, q in zip(mail.outbox, queued, strict=True) if q.payload["template"] == "incident_created")
    assert ack.body.split("\n\n")[1].startswith("Hello Alice")  # below the reply marker
    resolved = next(m for m in public if "A new client version" in m.body)
    assert resolved.body.split("\n\n")[1] == "Resolved"  # the event is the body's first line now
    # Mail to the desk only keeps its event subject and threads on the internal root alone: neither the public
    # root nor the requester's mail id, so a reply that keeps only References is still known as internal.
    internal_root = thread_root("incident", incident.id, internal=True)
    for message in internal:
        assert message.subject != f"[{incident.number}] VPN drops every few minutes"
        assert message.extra_headers["References"] == internal_root == message.extra_headers["In-Reply-To"]
        assert origin not in str(message.extra_headers) and root not in str(message.extra_headers)


def test_a_requests_public_mails_share_its_subject(requester, agent):
    from requests_app.services import request_comment_add, request_fulfil
    from servicedesk.registry import MailIntake, registry
    from tests.requests_app.factories import item

    wanted = item("Software", fields=[{"name": "what", "label": "What", "type": "long_text", "required": True}])
    made = registry.ticket_kind_named("request").create_from_mail(intake=MailIntake(
        requester=requester, title="Need Visio", body="For the floor plans.", catalog_item_id=wanted.id,
        data={"channel": "email", "message_id": "abc.123@mail.example.com"}))
    request_comment_add(request=made, author=agent, body="Which version?")
    request_fulfil(request_id=made.id, actor=agent, note="Installed Visio 2024")
    run_mail()
    to_requester = [m for m in mail.outbox if m.to == [requester.email]]
    assert len(to_requester) == 3
    assert {m.subject for m in to_requester} == {f"[{made.number}] Need Visio"}
    assert {m.extra_headers["References"] for m in to_requester} == {
        f"<abc.123@mail.example.com> {thread_root('request', made.id)}"}


def test_a_ticket_raised_on_the_portal_answers_the_root_and_an_unsafe_origin_is_left_out(incident_factory,
                                                                                         requester):
    from servicedesk.models import TimelineEntry
    from servicedesk.services import timeline_add

    incident = incident_factory()
    # A later reply by mail whose Message-ID would break our headers is not repeated in them.
    timeline_add(ticket=incident, kind=TimelineEntry.Kind.COMMENT, author=requester, body="x",
                 data={"channel": "email", "message_id": "evil@x>\r\nBcc: victim@example.com"})
    run_mail()
    headers = mail.outbox[0].extra_headers
    assert headers["In-Reply-To"] == headers["References"] == thread_root("incident", incident.id)
