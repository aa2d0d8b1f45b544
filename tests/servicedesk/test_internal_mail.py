"""Mail to agents only is internal (review item 2): its outbox payload and its Message-ID say so, a reply's ids
that answer it name the ticket with internal=True (even once the outbox has purged it, and although every mail
also carries the ticket's thread root), and the ticket kinds' reply adds an internal note when asked to."""

import pytest
from django.core import mail

from incidents.services import incident_assign, incident_comment_add
from servicedesk.mailthread import ThreadRef, mentions_internal, thread_of, thread_root
from servicedesk.models import OutboxMessage, Team, TimelineEntry
from servicedesk.notifications import email_message_id
from servicedesk.registry import registry
from tests.outbox_mail import run_mail

pytestmark = pytest.mark.django_db


def queued(template=None):
    rows = OutboxMessage.objects.filter(handler="email.send").order_by("id")
    return [m for m in rows if template is None or m.payload["template"] == template]




def test_agent_only_incident_mail_is_internal_and_the_requesters_is_not(incident_factory, agent, requester,
                                                                        make_user):
    desk = Team.objects.get(name="Service Desk")
    desk.members.add(agent)
    incident = incident_factory(assignee=agent, assignment_group=desk, created_by=requester)
    [ack] = queued("incident_created")
    [assigned] = queued("incident_update")
    assert ack.payload["thread"]["internal"] is False
    assert assigned.payload["context"]["audience"] == "agent" and assigned.payload["thread"]["internal"] is True
    OutboxMessage.objects.all().delete()

    colleague = make_user("agent", username="carl", teams=["Service Desk"])
    incident_assign(incident_id=incident.id, actor=agent, assignee=colleague)  # "Assigned to you"
    incident_comment_add(incident=incident, author=requester, body="Still jammed")  # "<requester> replied"
    incident_comment_add(incident=incident, author=colleague, body="On my way")  # to the requester
    internal = {(m.payload["to"][0], m.payload["context"].get("headline") or m.payload["template"],
                 m.payload["thread"]["internal"]) for m in queued()}
    assert internal == {
        (colleague.email, f"Assigned to you: {incident.title}", True),
        # The requester's words passed on: public, so the agent's answer by mail reaches the requester (R2).
        (colleague.email, f"{requester.get_full_name()} replied", False),
        (requester.email, "incident_comment", False),
    }


def test_the_message_id_of_internal_mail_says_so_and_a_reply_to_it_is_internal(incident_factory, agent):
    from incidents.services.notify import notify_people

    incident = incident_factory()
    [ack] = run_mail()
    notify_people(incident, to=[agent.email], audience="agent", headline="Unassigned P1")
    [alert] = run_mail()
    root = thread_root("incident", incident.id)
    internal_root = thread_root("incident", incident.id, internal=True)
    public_id, internal_id = email_message_id(ack), email_message_id(alert)
    assert ".internal@" in internal_id and ".internal@" not in public_id
    assert mail.outbox[-1].extra_headers["Message-ID"] == internal_id
    # Agents' clients thread it by its own root: only the internal root, never the public one (R1).
    assert mail.outbox[-1].extra_headers["References"] == internal_root == mail.outbox[-1].extra_headers[
        "In-Reply-To"]
    assert mail.outbox[0].extra_headers["References"] == root

    # What a reply carries: In-Reply-To (the mail answered), then References (the root first, then that mail).
    ref = ThreadRef("incident", incident.id, True, "outbox")
    assert thread_of([internal_id, internal_root, internal_id]) == ref
    assert thread_of([public_id, root, public_id]) == ThreadRef("incident", incident.id, False, "outbox")
    assert thread_of([root]) == ThreadRef("incident", incident.id, False, "root")  # a bare root: public
    # A relay (Amazon SES) rewrote our Message-ID: the reply keeps only the internal root, and is internal.
    assert thread_of([internal_root]) == ThreadRef("incident", incident.id, True, "root")
    assert thread_of(["<0100018f@email.amazonses.com>", internal_root]).internal is True
    # Fail closed: one internal id among public ones, in any order, makes the reply internal.
    assert thread_of([root, internal_id]) == ref
    assert thread_of([internal_id, public_id]).internal is True
    assert thread_of([public_id, internal_id]).internal is True
    assert thread_of([public_id, internal_root]) == ThreadRef("incident", incident.id, True, "outbox")


def test_a_reply_to_internal_mail_stays_internal_after_the_outbox_purged_it(incident_factory, agent):
    from incidents.services.notify import notify_people

    incident = incident_factory()
    notify_people(incident, to=[agent.email], audience="agent", headline="Unassigned P1")
    alert = queued("incident_update")[0]
    internal_id = email_message_id(alert)
    OutboxMessage.objects.all().delete()  # outbox_purge, OUTBOX_KEEP_DAYS later
    root = thread_root("incident", incident.id, internal=True)
    assert thread_of([internal_id, root]) == ThreadRef("incident", incident.id, True, "root")
    # Even with the public root only (a client that mixed threads), the purged internal id keeps it internal.
    assert thread_of([internal_id, thread_root("incident", incident.id)]).internal is True
    assert thread_of([internal_id]) is None  # no ticket named: nothing to reply to...
    assert mentions_internal([internal_id])  # ...but the channel still knows it answers internal mail (R6)


def test_a_forged_internal_marker_on_a_public_mail_only_makes_it_internal(incident_factory):
    incident = incident_factory()
    [ack] = queued()
    forged = email_message_id(ack).replace("@", ".internal@")
    assert thread_of([forged]) == ThreadRef("incident", incident.id, True, "outbox")  # never the other way round


@pytest.mark.parametrize("kind", ["incident", "request"])
def test_a_ticket_kinds_reply_adds_an_internal_note_when_asked_and_mails_nobody(kind, incident_factory, agent,
                                                                               requester):
    from requests_app.services import request_submit
    from tests.requests_app.factories import item

    if kind == "incident":
        ticket = incident_factory()
    else:
        ticket = request_submit(item=item("Headset"), answers={}, requester=requester, created_by=requester)
    OutboxMessage.objects.all().delete()
    entry = registry.ticket_kind_named(kind).reply(ticket=ticket, author=agent, body="Lead says: chase them",
                                                   data={"channel": "email"}, internal=True)
    assert entry.internal and entry.kind == TimelineEntry.Kind.NOTE and entry.data["channel"] == "email"
    assert not OutboxMessage.objects.filter(handler="email.send").exists()
    public = registry.ticket_kind_named(kind).reply(ticket=ticket, author=agent, body="We are on it")
    assert not public.internal
    assert [m.payload["to"] for m in queued()] == [[requester.email]]
