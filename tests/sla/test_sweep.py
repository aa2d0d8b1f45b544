"""The sweep marks each due warning and breach once and queues one escalation; the escalation runs the
policy's steps once, through the outbox."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from incidents.models import Incident
from servicedesk.models import OutboxMessage, Team, TimelineEntry, Webhook, WebhookDelivery
from servicedesk.outbox import outbox_process
from sla.models import BusinessCalendar, EscalationStep, SlaClock, SlaPolicy, SlaTarget, TeamWorkingHours
from sla.sweep import sla_sweep
from tests.sla.london import LONDON


@pytest.fixture
def always_policy(db):
    """Every priority: respond in 10 minutes, resolve in 60, on the 24x7 calendar; warn at 50 %."""
    SlaPolicy.objects.update(active=False)
    policy = SlaPolicy.objects.create(name="Fast", order=1, calendar=BusinessCalendar.objects.get(name="24x7"),
                                      warning_percent=50)
    SlaTarget.objects.bulk_create([
        SlaTarget(policy=policy, priority=p, first_response_minutes=10, resolution_minutes=60) for p in range(1, 6)
    ])
    return policy


def run_escalations() -> list[OutboxMessage]:
    messages = list(OutboxMessage.objects.filter(handler="sla.escalate", state="pending").order_by("id"))
    for message in messages:
        assert outbox_process(message.id, now=timezone.now() + timedelta(days=30)) == "done"
    return messages


def notes(incident) -> list[str]:
    return list(TimelineEntry.objects.filter(object_id=incident.id, data__event__startswith="sla.")
                .order_by("id").values_list("body", flat=True))


def test_each_threshold_is_marked_once_and_escalated_once(always_policy, incident_factory, agent):
    EscalationStep.objects.create(policy=always_policy, when="warning", action="notify_assignee")
    EscalationStep.objects.create(policy=always_policy, when="breach", action="notify_team_lead")
    desk = Team.objects.get(name="Service Desk")
    desk.lead = agent
    desk.save()
    start = timezone.now() - timedelta(minutes=1)
    incident = incident_factory(now=start, assignee=agent, assignment_group=desk)

    assert sla_sweep(now=start + timedelta(minutes=4)) == (0, 0)  # nothing due yet
    result = sla_sweep(now=start + timedelta(minutes=6))  # first response at 50 % of 10 min
    assert (result.breached, result.warned) == (0, 1)
    assert sla_sweep(now=start + timedelta(minutes=7)) == (0, 0)  # marked once
    run_escalations()
    assert notes(incident) == [notes(incident)[0]] and "First response SLA at 50 %" in notes(incident)[0]
    mails = OutboxMessage.objects.filter(handler="email.send", payload__template="sla_escalation")
    assert [m.payload["to"] for m in mails] == [[agent.email]]
    # The escalation threads with the incident's other mail (servicedesk.mailthread).
    # Internal: it goes to the desk only, so an answer to it by mail is never a public reply.
    assert mails.get().payload["thread"] == {"kind": "incident", "id": incident.id, "number": incident.number,
                                             "title": incident.title, "internal": True}

    result = sla_sweep(now=start + timedelta(minutes=31))  # first response breached, resolution warned
    assert (result.breached, result.warned) == (1, 1)
    run_escalations()
    assert sla_sweep(now=start + timedelta(minutes=40)) == (0, 0)
    assert len(notes(incident)) == 3
    assert any("First response SLA breached" in n and "team lead notified" in n for n in notes(incident))
    assert mails.all().count() == 3  # warning of first response, its breach (lead), warning of resolution


def test_a_clock_past_both_thresholds_is_only_breached(always_policy, incident_factory):
    EscalationStep.objects.create(policy=always_policy, when="warning", action="notify_assignee")
    start = timezone.now() - timedelta(hours=3)
    incident = incident_factory(now=start)
    result = sla_sweep(now=timezone.now())
    assert (result.breached, result.warned) == (2, 0)
    clock = SlaClock.objects.get(ticket_id=incident.id, kind="resolution")
    assert clock.breached_at is not None and clock.warned_at is not None and clock.warn_at is None
    assert OutboxMessage.objects.filter(handler="sla.escalate", payload__stage="warning").count() == 0


def test_sweep_skips_paused_and_stopped_clocks(always_policy, incident_factory, agent):
    from incidents.services import incident_assign, incident_hold, incident_resolve

    start = timezone.now() - timedelta(hours=3)
    held = incident_factory(now=start)
    incident_assign(incident_id=held.id, actor=agent, assignee=agent)
    SlaClock.objects.filter(ticket_id=held.id).update(running_since=timezone.now())  # not due yet
    incident_hold(incident_id=held.id, actor=agent, hold_reason="awaiting_caller")
    done = incident_factory(now=start)
    incident_resolve(incident_id=done.id, actor=agent, resolution_code="fixed", resolution_notes="x")
    late = incident_factory(now=start)
    assert sla_sweep(now=timezone.now() + timedelta(days=2)).breached == 2  # the late one's two clocks
    assert set(SlaClock.objects.filter(state="running", breached_at__isnull=False).values_list(
        "ticket_id", flat=True)) == {late.id}


def test_escalations_to_people_wait_for_the_teams_hours_except_p1(always_policy, incident_factory, agent, office):
    EscalationStep.objects.create(policy=always_policy, when="breach", action="notify_assignee")
    desk = Team.objects.get(name="Service Desk")
    TeamWorkingHours.objects.create(team=desk, calendar=office, hold_escalations=True)
    # Saturday 03:00 in London: the office is closed until Monday 09:00. The next Saturday to come, so that Monday
    # 09:00 is still ahead of the real clock the outbox schedules against (a fixed date stops working once past).
    today = timezone.localtime(timezone.now(), LONDON).date()
    next_saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    saturday = datetime(next_saturday.year, next_saturday.month, next_saturday.day, 3, 0, tzinfo=LONDON)
    low = incident_factory(now=saturday - timedelta(hours=2), assignee=agent, assignment_group=desk)
    urgent = incident_factory(now=saturday - timedelta(hours=2), assignee=agent, assignment_group=desk,
                              created_by=agent, impact=1, urgency=1)
    assert urgent.priority == 1
    sla_sweep(now=saturday)
    for message in OutboxMessage.objects.filter(handler="sla.escalate"):
        outbox_process(message.id, now=timezone.now() + timedelta(days=30))
    mails = {m.payload["context"]["ticket"]["number"]: m for m in
             OutboxMessage.objects.filter(handler="email.send", payload__template="sla_escalation")}
    monday = next_saturday + timedelta(days=2)
    monday_9 = datetime(monday.year, monday.month, monday.day, 9, 0, tzinfo=LONDON)
    assert mails[low.number].next_attempt_at == monday_9
    assert mails[urgent.number].next_attempt_at <= timezone.now()  # P1: at once
    assert any(f"held until {monday_9:%a %d %b} 09:00" in n for n in notes(low))


def test_reassign_raise_priority_and_webhook_steps(always_policy, incident_factory, agent):
    network = Team.objects.create(name="Network")
    hook = Webhook.objects.create(name="Pager", url="http://127.0.0.1:9/hook", secret="s", events=["nothing"])
    EscalationStep.objects.create(policy=always_policy, when="breach", action="reassign_team", team=network)
    EscalationStep.objects.create(policy=always_policy, when="breach", action="raise_priority")
    EscalationStep.objects.create(policy=always_policy, when="breach", action="webhook", webhook=hook)
    incident = incident_factory(now=timezone.now() - timedelta(minutes=65))
    assert incident.priority == 5
    sla_sweep(now=timezone.now())
    run_escalations()
    incident = Incident.objects.get(id=incident.id)
    assert incident.assignment_group == network
    assert incident.priority < 5
    deliveries = WebhookDelivery.objects.filter(webhook=hook)
    assert {d.event for d in deliveries} == {"sla.breached"}
    assert {d.payload["ticket"]["number"] for d in deliveries} == {incident.number}
    # two clocks breached (first response and resolution): each ran the steps once
    assert deliveries.count() == 2


def test_erasing_a_ticket_takes_its_clocks_and_sla_deliveries_and_escalation_is_then_a_no_op(
        always_policy, incident_factory, admin_user):
    from servicedesk.services import ticket_erase

    hook = Webhook.objects.create(name="Pager", url="http://127.0.0.1:9/hook", secret="s")
    EscalationStep.objects.create(policy=always_policy, when="breach", action="webhook", webhook=hook)
    incident = incident_factory(now=timezone.now() - timedelta(hours=2))
    sla_sweep(now=timezone.now())
    first = OutboxMessage.objects.filter(handler="sla.escalate").order_by("id").first()
    outbox_process(first.id)
    assert WebhookDelivery.objects.filter(event="sla.breached").count() == 1
    ticket_erase(number=incident.number, by=admin_user, reason="Data protection request")
    assert not SlaClock.objects.filter(ticket_id=incident.id).exists()
    assert not WebhookDelivery.objects.filter(event="sla.breached").exists()
    assert len(run_escalations()) == 1  # the other clock's escalation: nothing left to do
    assert not TimelineEntry.objects.filter(object_id=incident.id, data__event__startswith="sla.").exists()
