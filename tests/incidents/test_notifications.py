"""Who is told what: each change queues the right email (after commit) and webhook event."""

import pytest

from incidents import services
from servicedesk import outbox
from servicedesk.models import OutboxMessage, Team, Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


def queued_mail(callbacks) -> list[tuple[str, list[str], str]]:
    """(template, recipients, headline) of every email handed to the worker by the captured on-commit callbacks."""
    mails = []
    for callback in callbacks:
        assert callback.func is outbox.hand_off
        message = OutboxMessage.objects.get(id=callback.args[0])
        if message.handler == "email.send":
            kw = message.payload
            mails.append((kw["template"], kw["to"], kw["context"].get("headline", "")))
    return mails


@pytest.fixture
def team(agent):
    team = Team.objects.get(name="Service Desk")
    team.email = "desk@example.com"
    team.save()
    return team


def test_the_requester_is_told_about_creation(requester, incident_factory, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        incident_factory()
    assert queued_mail(callbacks) == [("incident_created", ["alice@example.com"], "")]


def test_an_unassigned_p1_alerts_the_team(incident_factory, team, agent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        incident = incident_factory(impact=1, urgency=1, assignment_group=team, created_by=agent)
    assert ("incident_update", ["desk@example.com"], f"Unassigned P1: {incident.title}") in queued_mail(callbacks)


def test_a_p3_does_not_alert_the_team(incident_factory, team, agent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        incident_factory(impact=2, urgency=2, assignment_group=team, created_by=agent)
    assert [m[0] for m in queued_mail(callbacks)] == ["incident_created"]


def test_the_assignee_is_told_on_assignment_but_not_when_assigning_themselves(
    incident_factory, agent, make_user, team, django_capture_on_commit_callbacks
):
    lead = make_user("manager", username="lena", teams=["Service Desk"])
    incident = incident_factory()
    with django_capture_on_commit_callbacks() as callbacks:
        services.incident_assign(incident_id=incident.id, actor=lead, assignee=agent)
    assert queued_mail(callbacks) == [("incident_update", ["agnes@example.com"], f"Assigned to you: {incident.title}")]
    other = incident_factory(title="self")
    with django_capture_on_commit_callbacks() as callbacks:
        services.incident_assign(incident_id=other.id, actor=agent, assignee=agent)
    assert queued_mail(callbacks) == []


def test_the_requester_is_told_about_hold_and_resolution(incident_factory, agent,
                                                         django_capture_on_commit_callbacks):
    incident = incident_factory()
    services.incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    with django_capture_on_commit_callbacks() as callbacks:
        services.incident_hold(incident_id=incident.id, actor=agent, hold_reason="awaiting_caller")
        services.incident_resume(incident_id=incident.id, actor=agent)
        services.incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed",
                                  resolution_notes="Cleared the cache.")
    assert [(t, to, h) for t, to, h in queued_mail(callbacks)] == [
        ("incident_update", ["alice@example.com"], "On hold (awaiting caller)"),
        ("incident_update", ["alice@example.com"], "Resolved"),
    ]


def test_a_public_reply_goes_to_the_requester_and_a_note_to_nobody(incident_factory, agent,
                                                                   django_capture_on_commit_callbacks):
    incident = incident_factory()
    with django_capture_on_commit_callbacks() as callbacks:
        services.incident_comment_add(incident=incident, author=agent, body="internal", internal=True)
    assert queued_mail(callbacks) == []
    with django_capture_on_commit_callbacks() as callbacks:
        services.incident_comment_add(incident=incident, author=agent, body="On it")
    assert queued_mail(callbacks) == [("incident_comment", ["alice@example.com"], "")]


def test_a_requester_reply_goes_to_the_assignee_or_else_the_team(incident_factory, agent, requester, team,
                                                                 django_capture_on_commit_callbacks):
    incident = incident_factory(assignment_group=team)
    with django_capture_on_commit_callbacks() as callbacks:
        services.incident_comment_add(incident=incident, author=requester, body="More info")
    assert queued_mail(callbacks) == [("incident_update", ["desk@example.com"], "Alice Able replied")]
    services.incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    with django_capture_on_commit_callbacks() as callbacks:
        services.incident_comment_add(incident=incident, author=requester, body="Even more")
    assert queued_mail(callbacks) == [("incident_update", ["agnes@example.com"], "Alice Able replied")]


def test_raising_the_priority_renotifies_and_emits_an_escalation(incident_factory, agent, team,
                                                                 django_capture_on_commit_callbacks):
    Webhook.objects.create(name="pager", url="http://127.0.0.1:9/", secret="x", events=["incident.escalated"])
    incident = incident_factory(assignment_group=team)
    services.incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    with django_capture_on_commit_callbacks() as callbacks:
        services.incident_update(incident_id=incident.id, actor=agent, impact=1, urgency=1)
    assert ("incident_update", ["agnes@example.com"], f"Priority raised to P1: {incident.title}") in queued_mail(
        callbacks)
    delivery = WebhookDelivery.objects.get(event="incident.escalated")
    assert (delivery.payload["priority"], delivery.payload["old_priority"]) == (1, 5)
    with django_capture_on_commit_callbacks() as callbacks:
        services.incident_update(incident_id=incident.id, actor=agent, impact=3, urgency=3)
    assert queued_mail(callbacks) == []  # lowering the priority bothers nobody


def test_the_update_email_renders_for_agents_with_a_workspace_link(incident_factory, agent, team):
    from django.core import mail

    from servicedesk.notifications import email_enqueue

    incident = incident_factory(assignment_group=team)
    email_enqueue(template="incident_update", to=["agnes@example.com"], context={
        "incident": services.incident_payload(incident), "headline": "Assigned to you: x", "details": "",
        "audience": "agent"})
    assert outbox.outbox_process(OutboxMessage.objects.filter(handler="email.send").latest("id").id) == "done"
    assert mail.outbox[-1].subject == f"[{incident.number}] Assigned to you: x"
    assert f"/agent/incidents/{incident.number}/" in mail.outbox[-1].body
