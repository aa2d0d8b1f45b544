"""servicedesk.mailthread: the thread root's HMAC, which ticket the ids of a reply name (our roots and our
outbox Message-IDs, in one query), and the number tags of subjects."""


import pytest

from servicedesk.mailthread import (
    REPLY_MARKER,
    ThreadRef,
    mail_domain,
    mentions_internal,
    numbers_in_subject,
    subject_tag,
    subject_tagged,
    thread_of,
    thread_root,
    ticket_kind_of,
)
from servicedesk.models import OutboxMessage
from servicedesk.notifications import email_message_id


def test_the_domain_is_the_site_urls_host(settings):
    settings.SITE_URL = "https://desk.example.org:8443/base"
    assert mail_domain() == "desk.example.org"
    settings.SITE_URL = ""
    assert mail_domain() == "servicedesk"


def test_a_root_names_its_ticket_and_is_stable(settings):
    settings.SITE_URL = "https://desk.example.org"
    root = thread_root("incident", 42)
    assert root == thread_root("incident", 42)
    assert root.startswith("<sd.incident.42.") and root.endswith("@desk.example.org>")
    assert thread_of([root]) == ThreadRef("incident", 42, False, "root")
    assert thread_of([root.strip("<>")]) == ThreadRef("incident", 42, False, "root")  # with or without <>
    assert thread_root("incident", 43) != root and thread_root("request", 42) != root


def test_internal_mail_has_a_root_of_its_own_signed_as_internal(settings):
    settings.SITE_URL = "https://desk.example.org"
    public, internal = thread_root("incident", 42), thread_root("incident", 42, internal=True)
    assert internal.startswith("<sd.incident.42.internal.") and internal.endswith("@desk.example.org>")
    assert public != internal and internal == thread_root("incident", 42, internal=True)
    def signature(root):
        return root.split("@")[0].rsplit(".", 1)[1]

    assert signature(public) != signature(internal)  # signed over "incident.42.internal"
    assert thread_of([internal]) == ThreadRef("incident", 42, True, "root")
    # Fail closed: one internal id among public ones makes the reply internal, whatever the order.
    assert thread_of([public, internal]) == ThreadRef("incident", 42, True, "root")
    assert thread_of([internal, public]) == ThreadRef("incident", 42, True, "root")
    # The public root's signature does not pass for the internal root (nor the other way round).
    forged = internal.replace(signature(internal), signature(public))
    assert thread_of([forged]) is None
    assert thread_of([public.replace("sd.incident.42.", "sd.incident.42.internal.")]) is None


def test_mentions_internal_sees_our_mark_even_when_nothing_resolves(settings):
    settings.SITE_URL = "https://desk.example.org"
    assert mentions_internal(["<outbox.99999.12345.r0.internal@desk.example.org>"])  # purged: names nothing
    assert mentions_internal(["<x@y>", "<outbox.99999.12345.internal@desk.example.org>"])  # the old form
    assert mentions_internal([thread_root("incident", 42, internal=True)])
    assert mentions_internal(["sd.incident.42.internal.0000000000@desk.example.org"])  # even unsigned
    assert not mentions_internal([thread_root("incident", 42), "<outbox.99999.12345.r1@desk.example.org>"])
    assert not mentions_internal(["<outbox.99999.12345.r0.internal@elsewhere.example>", "", "junk"])
    assert not mentions_internal([])


def test_a_tampered_root_names_nothing(settings):
    settings.SITE_URL = "https://desk.example.org"
    root = thread_root("incident", 42)
    forged = root.replace("sd.incident.42.", "sd.incident.41.")  # someone else's ticket with this signature
    assert thread_of([forged]) is None
    assert thread_of([root.replace("@desk.example.org", "@elsewhere.example")]) is None
    settings.SECRET_KEY = "another-key-" * 5  # signed with another installation's key
    assert thread_of([root]) is None


def test_unrelated_ids_name_nothing(db):
    assert thread_of([]) is None
    assert thread_of(["<CAF=abc@mail.gmail.com>", "", "garbage", "<outbox.1.2@gmail.com>"]) is None


@pytest.mark.django_db
def test_an_outbox_message_id_names_the_ticket_of_its_mail_in_one_query(django_assert_num_queries):
    first = OutboxMessage.objects.create(handler="email.send", payload={
        "template": "x", "to": ["a@example.com"], "context": {},
        "thread": {"kind": "request", "id": 7, "number": "REQ0001007"}})
    other = OutboxMessage.objects.create(handler="email.send", payload={
        "template": "x", "to": ["a@example.com"], "context": {},
        "thread": {"kind": "incident", "id": 9, "number": "INC0001009"}})
    plain = OutboxMessage.objects.create(handler="email.send", payload={"template": "x", "to": [], "context": {}})
    with django_assert_num_queries(1):
        found = thread_of(["<unknown@example.com>", email_message_id(plain), email_message_id(first),
                           email_message_id(other)])
    assert found == ThreadRef("request", 7, False, "outbox")  # the first of them that names a ticket
    assert thread_of([email_message_id(other)]) == ThreadRef("incident", 9, False, "outbox")
    # Each recipient's id names the ticket, and so does the old form (before one mail per recipient).
    assert thread_of([email_message_id(other, recipient=3)]) == ThreadRef("incident", 9, False, "outbox")
    old = email_message_id(other).replace(".r0@", "@")
    assert ".r" not in old and thread_of([old]) == ThreadRef("incident", 9, False, "outbox")
    assert thread_of([email_message_id(plain)]) is None  # a mail about no ticket


@pytest.mark.django_db
def test_an_outbox_id_with_the_wrong_timestamp_or_handler_names_nothing():
    message = OutboxMessage.objects.create(handler="email.send", payload={
        "thread": {"kind": "incident", "id": 9, "number": "INC0001009"}})
    real = email_message_id(message)
    stamp = int(message.created_at.timestamp())
    assert thread_of([real]) == ThreadRef("incident", 9, False, "outbox")
    assert thread_of([real.replace(f".{stamp}.", f".{stamp + 1}.")]) is None
    hook = OutboxMessage.objects.create(handler="webhook.deliver", created_at=message.created_at,
                                        payload={"thread": {"kind": "incident", "id": 9}})
    assert thread_of([email_message_id(hook)]) is None


def test_subject_tags():
    assert subject_tag("INC0001001") == "[INC0001001]"
    assert subject_tagged("Printer jammed", "INC0001001") == "[INC0001001] Printer jammed"
    assert subject_tagged("[INC0001001] Printer jammed", "INC0001001") == "[INC0001001] Printer jammed"
    assert subject_tagged("Re: Fwd: [INC0001001] x", "INC0001001") == "Re: Fwd: [INC0001001] x"
    assert numbers_in_subject("Re: [inc0001001] and [REQ0001002] [INC0001001] [x] [12345]") == [
        "INC0001001", "REQ0001002"]
    assert numbers_in_subject("no tags here") == []


@pytest.mark.django_db
def test_the_kind_of_a_ticket_comes_from_the_registry(incident_factory):
    from requests_app.models import ServiceRequest

    assert ticket_kind_of(incident_factory()) == "incident"
    assert ticket_kind_of(ServiceRequest(number="REQ0000001")) == "request"


def test_the_marker_is_the_agreed_line():
    assert REPLY_MARKER == "## Reply above this line ##"
