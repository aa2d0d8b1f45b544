"""Erasing a ticket (servicedesk.services.ticket_erase) scrubs its mails through the email channel's hook
(email_channel.plugin.inbound_mail_forget): the mails that raised or answered it, their copies in other
mailboxes, mails ignored while naming it and mails whose subject carries its tag. Tombstones keep Message-ID
and state, so the same mail read again is ignored (and stored scrubbed), never a new ticket (review 2, R5)."""

import pytest

from email_channel.models import InboundMessage
from email_channel.processing import inbound_process, inbound_retry, inbound_store
from incidents.models import Incident
from servicedesk.mailthread import thread_root
from servicedesk.services import ticket_erase
from tests.email_channel.inbound_helpers import deliver, mail, mailbox_make

State = InboundMessage.State
pytestmark = pytest.mark.django_db
SECRET = "IBAN DE00 1234 5678"


def _scrubbed(message: InboundMessage, number: str) -> None:
    message.refresh_from_db()
    assert (bytes(message.raw), message.size, message.subject, message.from_address) == (b"", 0, "", "")
    assert message.reason.startswith(f"erased with {number}"), message.reason


@pytest.fixture
def erased(requester, agent, admin_user):
    """One incident raised by mail and erased, with every kind of mail about it; returns what was there."""
    support = mailbox_make()
    it = mailbox_make(name="IT", address="it@desk.example")
    raw = mail(sender=requester.email, subject="My salary slip is wrong", text=f"My account: {SECRET}",
               message_id="<salary@client.example>")
    raised = deliver(support, raw)
    copy = deliver(it, raw)  # the same mail sent to two of our addresses
    assert raised.state == State.PROCESSED and copy.reason == f"duplicate of message #{raised.id}"
    incident = Incident.objects.get(id=raised.ticket_id)
    number = incident.number
    root = thread_root("incident", incident.id)
    replied = deliver(support, mail(sender=requester.email, subject=f"Re: [{number}] salary",
                                    text=f"Again: {SECRET}", headers={"References": root}))
    staff_by_tag = deliver(support, mail(sender=agent.email, subject=f"Re: [{number}] salary",
                                         text=f"Forged? {SECRET}"))  # ignored, but it named the ticket
    follow_up = deliver(support, mail(sender="stranger@else.example", subject=f"Fwd: [{number}] salary",
                                      text=f"Look: {SECRET}"))  # another ticket, its subject carries the tag
    other = deliver(support, mail(sender=requester.email, subject="Printer jams", text="Floor 3"))
    assert replied.action == "replied" and staff_by_tag.state == State.IGNORED and follow_up.action == "created"

    ticket_erase(number=number, by=admin_user, reason="GDPR request")
    return {"number": number, "raw": raw, "support": support, "it": it, "raised": raised, "copy": copy,
            "replied": replied, "staff_by_tag": staff_by_tag, "follow_up": follow_up, "other": other}


def test_erasing_a_ticket_scrubs_its_mails_their_copies_and_the_mails_naming_it(erased):
    number = erased["number"]
    for name in ("raised", "copy", "replied", "staff_by_tag", "follow_up"):
        _scrubbed(erased[name], number)
    # Tombstones: the Message-ID and the state stay.
    raised = InboundMessage.objects.get(id=erased["raised"].id)
    assert (raised.message_id, raised.state) == ("salary@client.example", State.PROCESSED)
    assert InboundMessage.objects.get(id=erased["copy"].id).state == State.IGNORED
    assert not any(SECRET.encode() in bytes(m.raw) or SECRET in m.subject for m in InboundMessage.objects.all())
    other = InboundMessage.objects.get(id=erased["other"].id)  # another ticket's mail stays as it was
    assert other.subject == "Printer jams" and other.size > 0 and b"Floor 3" in bytes(other.raw)
    # Retention's raw-mail rule has nothing left to read or archive in a tombstone; the other mail is still due.
    assert raised.raw_purged_at is not None and other.raw_purged_at is None


def test_the_erased_mail_read_again_is_ignored_and_stored_scrubbed(erased):
    """A UIDVALIDITY change re-reads the folder: the mail must not raise the erased ticket again."""
    tickets = Incident.objects.count()

    again = deliver(erased["support"], erased["raw"], source=InboundMessage.Source.IMAP, uidvalidity=2, uid=1)

    assert again.state == State.IGNORED and again.action == ""
    assert again.reason == f"erased with {erased['number']}: duplicate of message #{erased['raised'].id}"
    again.refresh_from_db()
    assert (bytes(again.raw), again.size, again.subject, again.from_address) == (b"", 0, "", "")
    assert again.message_id == "salary@client.example"  # still a tombstone for the next copy
    assert again.raw_purged_at is not None  # retention's raw-mail rule has nothing to read or archive in it
    assert Incident.objects.count() == tickets


def test_an_erased_ignored_copy_still_refuses_its_mail_in_a_mailbox_that_would_take_it(erased):
    """Only processed copies make a duplicate, except erased ones: any erased copy refuses the mail."""
    InboundMessage.objects.filter(id=erased["raised"].id).update(state=State.IGNORED)  # only ignored rows left

    again = deliver(erased["it"], erased["raw"])

    assert again.state == State.IGNORED and again.reason.startswith(f"erased with {erased['number']}")
    assert bytes(InboundMessage.objects.get(id=again.id).raw) == b""


def test_process_again_leaves_an_erased_mail_alone(erased, admin_user):
    staff_by_tag = erased["staff_by_tag"]

    retried = inbound_retry(message_id=staff_by_tag.id, by=admin_user)

    assert retried.state == State.IGNORED and retried.reason.startswith("erased with ")
    assert inbound_process(message_id=staff_by_tag.id).state == State.IGNORED


def test_the_original_mail_page_of_an_erased_mail_says_so(erased, agent_client):
    raised = erased["raised"]

    page = agent_client.get(f"/agent/mail/{raised.id}/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "was erased" in text and f"erased with {erased['number']}" in text and SECRET not in text
    assert agent_client.get(f"/agent/mail/{raised.id}/html/").status_code == 404
    assert agent_client.get(f"/agent/mail/{raised.id}/part/0/").status_code == 404


def test_the_admin_has_no_raw_mail_left_to_download(erased, admin_client):
    raised = erased["raised"]

    assert admin_client.get(f"/admin/email_channel/inboundmessage/{raised.id}/raw/").status_code == 404
    page = admin_client.get(f"/admin/email_channel/inboundmessage/{raised.id}/change/")
    assert page.status_code == 200 and f"erased with {erased['number']}" in page.content.decode()


def test_a_mail_stored_before_the_erasure_and_processed_after_is_a_scrubbed_duplicate(requester, admin_user):
    """The copy in the second mailbox was stored but not yet processed when the ticket was erased."""
    support, it = mailbox_make(), mailbox_make(name="IT", address="it@desk.example")
    raw = mail(sender=requester.email, subject="Salary", text=SECRET, message_id="<late@client.example>")
    raised = deliver(support, raw)
    late = inbound_store(mailbox=it, raw=raw, source=InboundMessage.Source.PIPE)
    number = Incident.objects.get(id=raised.ticket_id).number

    ticket_erase(number=number, by=admin_user, reason="GDPR request")
    late = inbound_process(message_id=late.id)

    assert late.state == State.IGNORED and not Incident.objects.exists()
    _scrubbed(late, number)
