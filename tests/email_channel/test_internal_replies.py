"""Who may answer which of our mails, and what the answer becomes (second review, R1/R2/R3/R6): a staff mail is a
public reply only when it answers one of our public mails; otherwise an internal note, and its author is told
why. Anyone else's answer to agent-only mail is ignored. Real mail: our notifications are rendered and "sent"
through the outbox (locmem backend), answered with their own headers, and processed on PostgreSQL."""

from email.utils import make_msgid

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core import mail as djmail

from email_channel.models import InboundMessage
from email_channel.processing import ANSWER_TO_INTERNAL
from incidents.models import Incident
from servicedesk import outbox
from servicedesk.mailthread import thread_root
from servicedesk.models import OutboxMessage, TimelineEntry
from tests.email_channel.inbound_helpers import deliver, mail, mailbox_make

State = InboundMessage.State
pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(db):
    return mailbox_make()


def _send_all() -> None:
    """Run every queued mail through the real email.send handler (rendering, headers) into djmail.outbox."""
    for message in OutboxMessage.objects.filter(handler="email.send", state="pending").order_by("id"):
        assert outbox.outbox_process(message.id) == "done", message.last_error


def _timeline(ticket):
    return list(TimelineEntry.objects.filter(content_type=ContentType.objects.get_for_model(ticket),
                                             object_id=ticket.id).order_by("id"))


def _incident_by_mail(mailbox) -> Incident:
    message = deliver(mailbox, mail(subject="Printer on floor 2 jams"))
    assert message.state == State.PROCESSED, message.error
    return Incident.objects.get(id=message.ticket_id)


def _sent_to(address: str):
    return [m for m in djmail.outbox if address in m.to]


def _answer(sent, *, sender: str, text: str, relay: bool = False, subject: str | None = None) -> bytes:
    """An answer to the sent mail `sent` as a mail client writes it: In-Reply-To its Message-ID, References
    its References and its Message-ID. `relay`: a relay (Amazon SES...) rewrote our Message-ID on the way out,
    so the answer carries the relay's id instead of ours."""
    answered = f"<{make_msgid(domain='email.amazonses.com').strip('<>')}>" if relay else \
        sent.extra_headers["Message-ID"]
    return mail(sender=sender, subject=subject or f"Re: {sent.subject}", text=text,
                headers={"In-Reply-To": answered,
                         "References": f"{sent.extra_headers.get('References', '')} {answered}".strip()})


def _kept_notices(address: str) -> list[dict]:
    return [m.payload for m in OutboxMessage.objects.filter(handler="email.send").order_by("id")
            if m.payload["template"] == "mail_kept_internal" and address in m.payload["to"]]


def _internal_alert(incident, to):
    from incidents.services.notify import notify_people

    _send_all()
    djmail.outbox.clear()
    notify_people(incident, to=[to.email], audience="agent", headline="SLA breach")
    _send_all()
    return _sent_to(to.email)[-1]


# --- a. staff ---------------------------------------------------------------------------------------------


def test_a_staff_answer_to_agent_only_mail_whose_id_a_relay_rewrote_is_an_internal_note_and_a_notice(
        mailbox, requester, make_user):
    """R1: the relay replaced our .internal Message-ID; what is left (the References) must still keep the
    answer among agents, and its author learns why."""
    incident = _incident_by_mail(mailbox)
    lead = make_user("manager", username="lead")
    alert = _internal_alert(incident, lead)
    djmail.outbox.clear()

    message = deliver(mailbox, _answer(alert, sender=lead.email, relay=True,
                                       text="Why is this still open? This customer always whines."))

    assert (message.state, message.action, message.ticket_id) == (State.PROCESSED, "replied", incident.id), \
        (message.reason, message.error)
    entry = TimelineEntry.objects.get(id=message.entry_id)
    assert entry.internal and entry.author == lead and "always whines" in entry.body
    [notice] = _kept_notices(lead.email)
    assert notice["thread"]["internal"] is True and notice["thread"]["id"] == incident.id
    assert notice["context"]["ticket"]["number"] == incident.number
    assert notice["context"]["reason"] == "it answers a mail for agents only"
    assert message.reason == "internal note: it answers a mail for agents only"
    _send_all()
    assert not _sent_to(requester.email)  # nothing of it reaches the requester
    [sent] = _sent_to(lead.email)
    assert incident.number in sent.subject and "internal" in sent.body


def test_a_staff_answer_naming_the_ticket_by_its_public_root_only_is_an_internal_note(mailbox, requester, agent):
    """A public thread found through the root alone (our Message-ID rewritten, or a made-up mail that copied
    the References of a forwarded mail) is not proof that the mail answers one of our public mails."""
    incident = _incident_by_mail(mailbox)
    _send_all()
    ack = _sent_to(requester.email)[-1]
    djmail.outbox.clear()
    entries = len(_timeline(incident))

    message = deliver(mailbox, _answer(ack, sender=agent.email, relay=True, text="We are on it."))

    assert (message.action, message.ticket_id) == ("replied", incident.id), (message.reason, message.error)
    entry = TimelineEntry.objects.get(id=message.entry_id)
    assert entry.internal and entry.author == agent
    assert len(_timeline(incident)) == entries + 1
    [notice] = _kept_notices(agent.email)
    assert notice["context"]["reason"].startswith("it answers none of our mails to the requester's side")
    _send_all()
    assert not _sent_to(requester.email)


def test_a_staff_answer_to_one_of_our_public_mails_is_a_public_reply_without_a_notice(mailbox, requester, agent):
    incident = _incident_by_mail(mailbox)
    _send_all()
    ack = _sent_to(requester.email)[-1]
    djmail.outbox.clear()

    message = deliver(mailbox, _answer(ack, sender=agent.email, text="We are on it."))

    assert (message.action, message.ticket_id, message.reason) == ("replied", incident.id, "")
    entry = TimelineEntry.objects.get(id=message.entry_id)
    assert not entry.internal and entry.author == agent
    assert not _kept_notices(agent.email)
    _send_all()
    assert any("We are on it." in m.body for m in _sent_to(requester.email))


def test_the_assignees_answer_to_the_requester_replied_mail_reaches_the_requester(mailbox, requester, agent,
                                                                                    incident_factory):
    """R2: the "<requester> replied" mail passed on to the assignee is public mail, so answering it by mail
    answers the requester (before, it became an internal note nobody outside saw)."""
    from incidents.services import incident_comment_add

    incident = incident_factory(assignee=agent)
    _send_all()
    djmail.outbox.clear()
    incident_comment_add(incident=incident, author=requester, body="Still jammed")
    _send_all()
    passed_on = _sent_to(agent.email)[-1]
    djmail.outbox.clear()

    message = deliver(mailbox, _answer(passed_on, sender=agent.email, text="Please power-cycle it."))

    assert (message.action, message.ticket_id, message.reason) == ("replied", incident.id, ""), message.error
    assert not TimelineEntry.objects.get(id=message.entry_id).internal
    assert not _kept_notices(agent.email)
    _send_all()
    assert any("Please power-cycle it." in m.body for m in _sent_to(requester.email))


def test_a_staff_mail_naming_a_ticket_by_its_subject_tag_alone_stays_ignored_and_records_the_ticket(
        mailbox, requester, agent):
    incident = _incident_by_mail(mailbox)

    message = deliver(mailbox, mail(sender=agent.email, subject=f"Re: [{incident.number}] Printer", text="Done."))

    assert message.state == State.IGNORED and message.reason.startswith("staff reply not taken")
    assert (message.ticket_kind, message.ticket_id, message.ticket_number) == ("incident", incident.id,
                                                                               incident.number)
    assert not _kept_notices(agent.email)


# --- b. everyone else -------------------------------------------------------------------------------------


def test_a_requesters_answer_to_agent_only_mail_is_ignored_never_a_comment_or_a_ticket(mailbox, requester, agent):
    incident = _incident_by_mail(mailbox)
    alert = _internal_alert(incident, agent)
    entries = len(_timeline(incident))

    message = deliver(mailbox, _answer(alert, sender=requester.email, text="Someone forwarded me this."))

    assert (message.state, message.reason) == (State.IGNORED, ANSWER_TO_INTERNAL)
    assert message.ticket_id == incident.id  # recorded: erasing the incident finds this mail
    assert Incident.objects.count() == 1 and len(_timeline(incident)) == entries


def test_an_approvers_approved_reply_to_the_approval_mail_is_ignored(mailbox, requester, make_user):
    """R3: the approver (no staff role) answers the approval request by mail, quoting its one-time links. It
    must not open a ticket carrying the links for every agent to read, nor decide the approval."""
    from requests_app.models import Approval
    from tests.requests_app.approval_helpers import licence, manage, order

    manager = make_user("requester", username="manny", first_name="Manny", last_name="Manager")
    manage(requester, manager)
    order(licence("Licence", ("manager", "any")), requester)
    _send_all()
    asked = _sent_to(manager.email)[-1]
    quoted = "\n".join(f"> {line}" for line in asked.body.splitlines())

    message = deliver(mailbox, _answer(asked, sender=manager.email,
                                       text=f"Approved, go ahead.\n\nOn Mon, Servicedesk wrote:\n{quoted}\n"))

    assert (message.state, message.reason) == (State.IGNORED, ANSWER_TO_INTERNAL), (message.action, message.error)
    assert not Incident.objects.exists()
    assert list(Approval.objects.values_list("state", flat=True)) == ["pending"]


def test_an_answer_to_purged_agent_only_mail_named_by_its_subject_tag_is_ignored(mailbox, requester, agent):
    """R6: the outbox purged the internal mail and the client sent In-Reply-To only: no ticket from the ids,
    the tag names it -- but the id still says it answered agent-only mail."""
    incident = _incident_by_mail(mailbox)
    alert = _internal_alert(incident, agent)
    OutboxMessage.objects.filter(handler="email.send").delete()  # purged
    entries = len(_timeline(incident))

    message = deliver(mailbox, mail(sender=requester.email, subject=f"Re: [{incident.number}] SLA breach",
                                    text="Is this about me?",
                                    headers={"In-Reply-To": alert.extra_headers["Message-ID"]}))

    assert (message.state, message.reason) == (State.IGNORED, ANSWER_TO_INTERNAL)
    assert len(_timeline(incident)) == entries and Incident.objects.count() == 1


def test_an_answer_to_purged_agent_only_mail_naming_no_ticket_opens_none(mailbox, requester, agent):
    incident = _incident_by_mail(mailbox)
    alert = _internal_alert(incident, agent)
    OutboxMessage.objects.filter(handler="email.send").delete()

    message = deliver(mailbox, mail(sender=requester.email, subject="Re: SLA breach", text="Approved.",
                                    headers={"In-Reply-To": alert.extra_headers["Message-ID"]}))

    assert (message.state, message.reason) == (State.IGNORED, ANSWER_TO_INTERNAL)
    assert Incident.objects.count() == 1


# --- c. follow-ups ----------------------------------------------------------------------------------------


def test_a_follow_up_holds_the_new_text_only_not_the_quoted_mail(mailbox, requester, other_requester):
    incident = _incident_by_mail(mailbox)
    root = thread_root("incident", incident.id)
    text = ("Same problem on floor 3.\n\nOn Mon, 1 Jan, Service Desk wrote:\n> Your printer jams: the one-time "
            "link https://desk.example/secret-token\n> Regards")

    message = deliver(mailbox, mail(sender=other_requester.email, subject=f"Re: [{incident.number}] Printer",
                                    text=text, headers={"References": root}))

    assert message.action == "created" and message.ticket_id != incident.id, (message.reason, message.error)
    description = Incident.objects.get(id=message.ticket_id).description
    assert description.startswith(f"Follow-up to {incident.number}: Same problem on floor 3.")
    assert "secret-token" not in description and "wrote:" not in description
