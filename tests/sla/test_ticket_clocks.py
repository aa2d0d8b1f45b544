"""Per-ticket clocks driven by incidents' services: start, pause, resume, re-target, stop, restart, OLA."""

from datetime import datetime, time, timedelta

import pytest

from incidents.models import Incident
from incidents.services import (
    incident_assign,
    incident_cancel,
    incident_comment_add,
    incident_hold,
    incident_reopen,
    incident_resolve,
    incident_transition,
    incident_update,
)
from servicedesk.models import Team
from sla.models import BusinessCalendar, ClockState, Holiday, OlaTarget, SlaClock, SlaPolicy, SlaTarget
from tests.sla.london import at


def clocks(incident) -> dict[str, SlaClock]:
    rows = SlaClock.objects.filter(ticket_type="incident", ticket_id=incident.id).order_by("id")
    return {c.kind: c for c in rows}


@pytest.fixture
def office_policy(office):
    """The only active incident policy: the London office calendar, 4 business hours to resolve any priority
    (1 hour first response), warning at 50 %."""
    SlaPolicy.objects.update(active=False)
    policy = SlaPolicy.objects.create(name="Office 4h", order=1, calendar=office, warning_percent=50)
    SlaTarget.objects.bulk_create([
        SlaTarget(policy=policy, priority=p, first_response_minutes=60, resolution_minutes=240) for p in range(1, 6)
    ])
    return policy


def test_friday_16h_with_four_business_hours_is_due_monday_noon_and_tuesday_after_a_monday_holiday(
        office_policy, office, incident_factory):
    incident = incident_factory(now=at(2026, 11, 27, 16, 0))  # a Friday
    resolution = clocks(incident)["resolution"]
    assert resolution.state == ClockState.RUNNING
    assert resolution.due_at == at(2026, 11, 30, 12, 0)  # Monday 12:00
    assert resolution.warn_at == at(2026, 11, 30, 10, 0)  # 2 of 4 hours: 1 h on Friday, 1 h on Monday
    assert Incident.objects.get(id=incident.id).sla_due_at == at(2026, 11, 27, 17, 0)  # first response: 1 h

    Holiday.objects.create(calendar=office, date=datetime(2026, 12, 7).date(), name="A Monday off")
    later = incident_factory(now=at(2026, 12, 4, 16, 0))  # the Friday before it
    assert clocks(later)["resolution"].due_at == at(2026, 12, 8, 12, 0)  # Tuesday 12:00


def test_default_policies_give_every_priority_running_clocks_from_the_first_minute(incident_factory, agent):
    for impact, urgency, priority in ((1, 1, 1), (1, 2, 2), (2, 2, 3), (2, 3, 4), (3, 3, 5)):
        incident = incident_factory(created_by=agent, impact=impact, urgency=urgency)
        assert incident.priority == priority
        found = clocks(incident)
        assert {k: c.state for k, c in found.items() if k != "ola"} == {
            "first_response": "running", "resolution": "running"}, priority
        assert found["resolution"].policy.ticket_type == "incident"


def test_hold_awaiting_caller_pauses_and_resume_keeps_elapsed_time(office_policy, incident_factory, agent):
    incident = incident_factory(now=at(2026, 11, 23, 9, 0))  # Monday 09:00
    incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    incident_transition(incident_id=incident.id, to="on_hold", hold_reason="awaiting_caller", actor=agent,
                        now=at(2026, 11, 23, 10, 0))
    paused = clocks(incident)["resolution"]
    assert paused.state == ClockState.PAUSED
    assert paused.due_at is None and paused.warn_at is None
    assert paused.elapsed_seconds == 3600
    assert paused.segments[-1]["state"] == "paused"
    assert paused.segments[-1]["reason"] == "On hold (awaiting caller)"
    # The first response clock still runs (nobody replied), so the incident's next deadline is its own.
    assert Incident.objects.get(id=incident.id).sla_due_at == clocks(incident)["first_response"].due_at

    incident_transition(incident_id=incident.id, to="in_progress", actor=agent, now=at(2026, 11, 23, 15, 0))
    resumed = clocks(incident)["resolution"]
    assert resumed.state == ClockState.RUNNING
    assert resumed.elapsed_seconds == 3600  # the five paused hours did not count
    assert resumed.due_at == at(2026, 11, 24, 10, 0)  # 3 h left: 2 today (15-17), 1 tomorrow
    assert [s["state"] for s in resumed.segments] == ["running", "paused", "running"]
    assert resumed.segments[1]["seconds"] == 5 * 3600


def test_hold_awaiting_vendor_does_not_pause_by_default(office_policy, incident_factory, agent):
    incident = incident_factory()
    incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    incident_hold(incident_id=incident.id, actor=agent, hold_reason="awaiting_vendor")
    assert clocks(incident)["resolution"].state == ClockState.RUNNING


def test_priority_change_retargets_and_keeps_elapsed_business_time(office, incident_factory, agent):
    SlaPolicy.objects.update(active=False)
    policy = SlaPolicy.objects.create(name="By priority", order=1, calendar=office)
    SlaTarget.objects.bulk_create([
        SlaTarget(policy=policy, priority=5, first_response_minutes=60, resolution_minutes=8 * 60),
        SlaTarget(policy=policy, priority=3, first_response_minutes=30, resolution_minutes=4 * 60),
    ])
    incident = incident_factory(created_by=agent, impact=3, urgency=3, now=at(2026, 11, 23, 9, 0))
    assert clocks(incident)["resolution"].target_seconds == 8 * 3600
    # An hour later (wall clock of the engine: the update happens "now"), raise it to P3.
    SlaClock.objects.filter(ticket_id=incident.id).update(running_since=at(2026, 11, 23, 9, 0))
    incident_update(incident_id=incident.id, actor=agent, impact=2, urgency=2)
    clock = clocks(incident)["resolution"]
    assert clock.priority == 3 and clock.target_seconds == 4 * 3600
    assert clock.elapsed_seconds > 0  # kept, not restarted
    assert "P5 → P3" in clock.segments[-1]["reason"] and "8 h → 4 h" in clock.segments[-1]["reason"]
    assert [s["state"] for s in clock.segments] == ["running", "running"]


def test_first_public_reply_by_an_agent_meets_first_response_and_notes_do_not(office_policy, incident_factory,
                                                                               agent, requester):
    incident = incident_factory()
    incident_comment_add(incident=incident, author=agent, body="Looking", internal=True)
    assert clocks(incident)["first_response"].state == ClockState.RUNNING
    incident_comment_add(incident=incident, author=requester, body="Any news?")
    assert clocks(incident)["first_response"].state == ClockState.RUNNING
    incident_comment_add(incident=incident, author=agent, body="On it")
    first = clocks(incident)["first_response"]
    assert first.state == ClockState.MET and first.stopped_at is not None
    assert clocks(incident)["resolution"].state == ClockState.RUNNING


def test_assignment_alone_does_not_meet_first_response(office_policy, incident_factory, agent):
    incident = incident_factory()
    incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    assert clocks(incident)["first_response"].state == ClockState.RUNNING


def test_resolve_stops_both_reopen_restarts_resolution_keeping_elapsed(office_policy, incident_factory, agent):
    incident = incident_factory(now=at(2026, 11, 23, 9, 0))
    incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed", resolution_notes="Done",
                     now=at(2026, 11, 23, 10, 0))
    found = clocks(incident)
    assert found["first_response"].state == ClockState.MET
    assert found["resolution"].state == ClockState.MET
    assert found["resolution"].elapsed_seconds == 3600
    incident_reopen(incident_id=incident.id, actor=agent, reason="Still broken")
    again = clocks(incident)["resolution"]
    assert again.state == ClockState.RUNNING and again.stopped_at is None
    assert again.elapsed_seconds == 3600
    assert any(s["state"] == "paused" and s["reason"] == "Resolved" for s in again.segments)
    assert clocks(incident)["first_response"].state == ClockState.MET  # answered once is answered


def test_resolving_after_the_target_is_breached_even_before_the_sweep(office_policy, incident_factory, agent):
    incident = incident_factory(now=at(2026, 11, 23, 9, 0))
    incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed", resolution_notes="Done",
                     now=at(2026, 11, 23, 14, 0))
    resolution = clocks(incident)["resolution"]
    assert resolution.state == ClockState.BREACHED and resolution.breached_at == at(2026, 11, 23, 14, 0)
    assert clocks(incident)["first_response"].state == ClockState.BREACHED


def test_cancel_cancels_running_clocks(office_policy, incident_factory, agent):
    incident = incident_factory()
    incident_cancel(incident_id=incident.id, actor=agent, reason="Duplicate")
    assert {c.state for c in clocks(incident).values()} == {ClockState.CANCELLED}
    assert Incident.objects.get(id=incident.id).sla_due_at is None


def test_reassignment_keeps_sla_clocks_and_starts_the_new_teams_ola(office_policy, office, incident_factory, agent):
    desk = Team.objects.get(name="Service Desk")
    network = Team.objects.create(name="Network")
    OlaTarget.objects.create(team=desk, priority=5, minutes=30, calendar=office)
    OlaTarget.objects.create(team=network, priority=5, minutes=120, calendar=office)
    incident = incident_factory(assignment_group=desk)
    first = clocks(incident)
    assert first["ola"].team == desk and first["ola"].target_seconds == 1800
    incident_assign(incident_id=incident.id, actor=agent, assignment_group=network)
    rows = list(SlaClock.objects.filter(ticket_id=incident.id, kind="ola").order_by("id"))
    assert [(c.team.name, c.state) for c in rows] == [("Service Desk", "met"), ("Network", "running")]
    after = clocks(incident)
    assert after["resolution"].id == first["resolution"].id and after["resolution"].state == "running"
    assert after["resolution"].segments == first["resolution"].segments  # untouched by the move


def test_no_policy_no_clocks_and_a_later_priority_change_can_start_them(office, incident_factory, agent):
    SlaPolicy.objects.update(active=False)
    policy = SlaPolicy.objects.create(name="Only P1", order=1, calendar=office)
    SlaTarget.objects.create(policy=policy, priority=1, first_response_minutes=15, resolution_minutes=60)
    incident = incident_factory(created_by=agent, impact=3, urgency=3)
    assert clocks(incident) == {}
    incident_update(incident_id=incident.id, actor=agent, impact=1, urgency=1)
    assert clocks(incident)["resolution"].target_seconds == 3600


def test_paused_clock_keeps_its_remaining_time_while_you_watch(office_policy, incident_factory, agent):
    from sla.clocks import clock_calendar, remaining_seconds

    incident = incident_factory(now=at(2026, 11, 23, 9, 0))
    incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    incident_transition(incident_id=incident.id, to="on_hold", hold_reason="awaiting_caller", actor=agent,
                        now=at(2026, 11, 23, 10, 0))
    clock = clocks(incident)["resolution"]
    cal = clock_calendar(clock.calendar)
    assert remaining_seconds(clock, cal, at(2026, 11, 23, 11, 0)) == 3 * 3600
    assert remaining_seconds(clock, cal, at(2026, 11, 27, 16, 0)) == 3 * 3600


def test_calendar_edits_reach_the_cached_calendar(office):
    from sla.clocks import clock_calendar

    before = clock_calendar(BusinessCalendar.objects.get(id=office.id))
    office.intervals.filter(weekday=0).update(end=time(12))  # a queryset update sends no signal ...
    office.intervals.get(weekday=1).save()  # ... a saved row does, and raises the revision
    after = clock_calendar(BusinessCalendar.objects.get(id=office.id))
    assert before != after
    assert after.week[0] == ((time(9), time(12)),)


def test_resume_via_requester_reply(office_policy, incident_factory, agent, requester):
    incident = incident_factory()
    incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    incident_hold(incident_id=incident.id, actor=agent, hold_reason="awaiting_caller")
    assert clocks(incident)["resolution"].state == ClockState.PAUSED
    incident_comment_add(incident=Incident.objects.get(id=incident.id), author=requester, body="Here it is")
    assert clocks(incident)["resolution"].state == ClockState.RUNNING


def test_sync_costs_a_few_queries(office_policy, incident_factory, agent, django_assert_max_num_queries):
    incident = incident_factory()
    incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    from incidents.sla import incident_sla_sync

    fresh = Incident.objects.get(id=incident.id)
    with django_assert_max_num_queries(4):  # organisation, clocks (locked), policy, target
        incident_sla_sync(fresh, now=fresh.created_at + timedelta(minutes=5), reason="check")
