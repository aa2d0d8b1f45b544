"""Clocks after configuration changes and late escalations: cases a review found."""

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from incidents.services import incident_assign, incident_comment_add, incident_hold, incident_update
from servicedesk.models import OutboxMessage, Team, TimelineEntry
from servicedesk.outbox import outbox_process
from sla.models import (
    BusinessCalendar,
    ClockKind,
    EscalationStep,
    Holiday,
    OlaTarget,
    SlaClock,
    SlaPolicy,
    SlaTarget,
)
from sla.retime import clocks_retime
from sla.sweep import sla_sweep
from sla.whatif import calendar_whatif, draft_calendar
from tests.sla.london import at


def clock(incident, kind=ClockKind.RESOLUTION) -> SlaClock:
    return SlaClock.objects.filter(ticket_id=incident.id, kind=kind).order_by("-id").first()


@pytest.fixture
def office_p3_only(office):
    SlaPolicy.objects.update(active=False)
    policy = SlaPolicy.objects.create(name="P3 office", order=1, calendar=office)
    SlaTarget.objects.create(policy=policy, priority=3, first_response_minutes=60, resolution_minutes=240)
    return policy


def test_a_priority_no_policy_covers_and_back_runs_on_with_the_time_it_had(office_p3_only, incident_factory, agent):
    incident = incident_factory(created_by=agent, impact=2, urgency=2, now=timezone.now() - timedelta(hours=1))
    assert incident.priority == 3
    SlaClock.objects.filter(ticket_id=incident.id).update(elapsed_seconds=1800)
    incident_update(incident_id=incident.id, actor=agent, impact=3, urgency=3)  # P5: no policy
    assert clock(incident).state == "cancelled"
    incident_update(incident_id=incident.id, actor=agent, impact=2, urgency=2)  # P3 again
    again = clock(incident)
    assert again.state == "running" and again.elapsed_seconds >= 1800
    assert any(s["reason"] == "No SLA policy covered it" for s in again.segments)
    assert SlaClock.objects.filter(ticket_id=incident.id).count() == 2  # the same two clocks, not new ones


def test_saving_a_policy_moves_calendar_warning_and_pause_statuses_onto_open_clocks(
        office_p3_only, incident_factory, agent):
    incident = incident_factory(created_by=agent, impact=2, urgency=2)
    incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    incident_hold(incident_id=incident.id, actor=agent, hold_reason="awaiting_vendor")
    assert clock(incident).state == "running"  # the default pauses only awaiting the caller
    always = BusinessCalendar.objects.get(name="24x7")
    SlaPolicy.objects.filter(id=office_p3_only.id).update(calendar=always, warning_percent=10,
                                                          pause_statuses=["on_hold"])
    clocks_retime(policy_id=office_p3_only.id, reason="Policy P3 office changed")
    moved = clock(incident)
    assert moved.calendar_id == always.id and moved.warning_percent == 10
    assert moved.state == "paused" and moved.segments[-1]["reason"] == "On hold (awaiting vendor)"
    assert any("Calendar 24x7" in s["reason"] for s in moved.segments)


def test_recounting_after_a_calendar_edit_keeps_time_counted_on_another_calendar(incident_factory, agent, office):
    SlaPolicy.objects.update(active=False)
    always = BusinessCalendar.objects.get(name="24x7")
    urgent = SlaPolicy.objects.create(name="P2 always", order=1, calendar=always)
    SlaTarget.objects.create(policy=urgent, priority=2, first_response_minutes=600, resolution_minutes=6000)
    normal = SlaPolicy.objects.create(name="P3 office", order=2, calendar=office)
    SlaTarget.objects.create(policy=normal, priority=3, first_response_minutes=600, resolution_minutes=6000)
    friday_20h = at(2026, 11, 27, 20, 0)
    incident = incident_factory(created_by=agent, impact=1, urgency=2, now=friday_20h)  # P2 on 24x7
    SlaClock.objects.filter(ticket_id=incident.id).update(running_since=friday_20h)
    from incidents.models import Incident
    from incidents.sla import incident_sla_sync

    found = Incident.objects.get(id=incident.id)
    found.priority, found.urgency = 3, 3
    Incident.objects.filter(id=incident.id).update(priority=3, urgency=3)
    incident_sla_sync(found, now=friday_20h + timedelta(hours=2), reason="P2 → P3")  # to office hours
    assert clock(incident).elapsed_seconds == 7200 and clock(incident).calendar_id == office.id

    Holiday.objects.create(calendar=office, date=datetime(2026, 12, 25).date(), name="Christmas")
    preview = calendar_whatif(office.id, draft_calendar(tz=office.timezone, is_24x7=False, intervals=[
        (i.weekday, i.start, i.end) for i in office.intervals.all()], holidays=[datetime(2026, 12, 25).date()]))
    clocks_retime(calendar_id=office.id, reason="Holiday added")
    assert clock(incident).elapsed_seconds == 7200  # the two 24x7 hours stay counted
    row = next(r for r in preview.rows if r.clock.id == clock(incident).id)
    assert row.new_due == clock(incident).due_at  # the preview said so


def test_an_escalation_for_a_clock_that_stopped_meanwhile_does_nothing(incident_factory, agent):
    SlaPolicy.objects.update(active=False)
    policy = SlaPolicy.objects.create(name="Fast", order=1, calendar=BusinessCalendar.objects.get(name="24x7"),
                                      warning_percent=50)
    SlaTarget.objects.bulk_create([SlaTarget(policy=policy, priority=p, first_response_minutes=10,
                                             resolution_minutes=600) for p in range(1, 6)])
    EscalationStep.objects.create(policy=policy, when="warning", action="notify_assignee")
    incident = incident_factory(now=timezone.now() - timedelta(minutes=6), assignee=agent)
    assert sla_sweep().warned == 1  # the first response warning
    incident_comment_add(incident=incident, author=agent, body="On it")  # answered before the worker ran
    [message] = OutboxMessage.objects.filter(handler="sla.escalate")
    assert outbox_process(message.id) == "done"
    assert not OutboxMessage.objects.filter(handler="email.send", payload__template="sla_escalation").exists()
    note = TimelineEntry.objects.get(object_id=incident.id, data__event="sla.warning")
    assert "met meanwhile: no escalation" in note.body


def test_saving_an_ola_target_retimes_the_teams_open_ola_clocks(admin_client, office, incident_factory, agent):
    desk = Team.objects.get(name="Service Desk")
    target = OlaTarget.objects.create(team=desk, priority=5, minutes=60, calendar=office)
    incident = incident_factory(assignment_group=desk)
    assert clock(incident, ClockKind.OLA).target_seconds == 3600
    response = admin_client.post(f"/admin/sla/olatarget/{target.id}/change/", {
        "team": desk.id, "priority": 5, "minutes": 240, "calendar": office.id, "_save": "Save"})
    assert response.status_code == 302
    for message in OutboxMessage.objects.filter(handler="sla.retime"):
        outbox_process(message.id)
    ola = clock(incident, ClockKind.OLA)
    assert ola.target_seconds == 4 * 3600 and ola.state == "running"
    assert "OLA target: target 1 h → 4 h" in ola.segments[-1]["reason"]


def test_pause_statuses_must_be_statuses_of_the_ticket_type(office):
    policy = SlaPolicy(name="Typo", calendar=office, ticket_type="incident",
                       pause_statuses=["on_hold:awaiting_customer"])
    with pytest.raises(ValidationError) as error:
        policy.full_clean()
    assert "not a status of incident" in error.value.message_dict["pause_statuses"][0]
    SlaPolicy(name="Fine", calendar=office, ticket_type="incident",
              pause_statuses=["on_hold", "on_hold:awaiting_vendor"]).full_clean()


def test_escalation_mail_shows_the_due_time_as_people_read_it(incident_factory, agent):
    from sla.escalations import escalation_payload
    from sla.registry import adapter_for

    SlaPolicy.objects.filter(name="Incidents: office hours").update(active=True)
    incident = incident_factory(now=at(2026, 11, 27, 16, 0))
    found = clock(incident)
    payload = escalation_payload(found, adapter_for("incident").info(incident.id), "breach", timezone.now())
    assert payload["due_local"].endswith(f"({timezone.get_current_timezone_name()})")
    assert "T" not in payload["due_local"].split(",")[0]
