"""The rollup's edge cases: what a later change does to earlier days, what does not count, and the standard
windows' times worked out by the rollup task."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Channel
from incidents.services import incident_comment_add, incident_create, incident_transition
from incidents.states import Status
from insights.measures import measure_values, time_figures
from insights.models import DailyRollup, WindowTimes
from insights.rollup import rollup_days, rollup_rebuild, rollup_run
from insights.scope import scope_for
from requests_app.services import request_fulfil, request_submit
from sla.models import ClockKind, ClockState, SlaClock
from tests.insights.conftest import at
from tests.requests_app.factories import item

pytestmark = pytest.mark.django_db


def period(user, first, last, **extra):
    return scope_for(user, {"from": first.isoformat(), "to": last.isoformat(), **extra})


def test_a_reopen_older_than_the_recent_days_is_caught_by_the_nightly_recount(week, settings):
    days, boss = week["days"], week["boss"]
    scope = period(boss, days[0], days[-1])
    rollup_run()
    assert measure_values(scope)["resolved"] == 3
    i2 = week["incidents"][1]  # resolved on D1, three weeks ago: outside the recent days
    # With no SLA clock (no policy matched), nothing left on D1 says it changed: only its resolved_at did.
    SlaClock.objects.filter(ticket_type="incident", ticket_id=i2.id).delete()
    incident_transition(incident_id=i2.id, to=Status.IN_PROGRESS, actor=boss, reason="Not fixed")
    settings.INSIGHTS_ROLLUP_RECENT_DAYS = 2
    rollup_run()
    assert measure_values(scope)["resolved"] == 3  # D1 was not recounted: nothing dated D1 changed
    rollup_rebuild()
    assert measure_values(scope)["resolved"] == 2
    assert measure_values(scope)["backlog"] == 3


def test_a_note_on_a_cancelled_incident_does_not_count_it_twice(week):
    days, boss = week["days"], week["boss"]
    scope = period(boss, days[0], timezone.localdate())
    rollup_rebuild()
    ended = DailyRollup.objects.filter(kind="incident").values_list("ended", flat=True)
    before = sum(ended)
    i6 = week["incidents"][5]  # cancelled on D3
    incident_comment_add(incident=i6, author=boss, body="For the record: duplicate of INC-1", internal=True)
    rollup_run()
    assert sum(DailyRollup.objects.filter(kind="incident").values_list("ended", flat=True)) == before
    assert measure_values(scope)["backlog"] == 2


def test_an_incident_monitoring_resolved_at_once_is_not_a_first_contact_resolution(make_user):
    boss = make_user("admin", username="boss")
    today = timezone.localdate()
    for channel in (Channel.MONITORING, Channel.PORTAL):
        incident = incident_create(title=f"Disk full ({channel})", requester=boss, created_by=boss, channel=channel)
        incident_transition(incident_id=incident.id, to=Status.RESOLVED, actor=boss, resolution_code="fixed",
                            resolution_notes="Cleared.", force=True)
    rollup_days([today])
    values = measure_values(period(boss, today, today))
    assert values["fcr_rate"] == 100.0  # 1 of the 1 raised by people; monitoring's is in neither count
    assert values["resolved"] == 2


def test_ola_clocks_are_not_in_sla_compliance(week):
    days = week["days"]
    i1 = week["incidents"][0]
    clock = SlaClock.objects.filter(ticket_type="incident", ticket_id=i1.id).first()
    SlaClock.objects.create(ticket_type="incident", ticket_id=i1.id, kind=ClockKind.OLA, state=ClockState.BREACHED,
                            calendar=clock.calendar, priority=clock.priority, target_seconds=60,
                            started_at=at(days[0], 9), stopped_at=at(days[0], 10))
    rollup_rebuild()
    assert measure_values(period(week["boss"], days[0], days[-1]))["sla_compliance"] == 66.7


def test_only_requests_the_handler_delivered_unapproved_are_automated(make_user):
    boss = make_user("admin", username="boss")
    agent = make_user("agent", username="fulfiller", teams=["Service Desk"])
    requester = make_user("requester", username="orderer")
    laptop = item("Laptop bag")
    by_handler = request_submit(item=laptop, answers={}, requester=requester, created_by=requester)
    by_person = request_submit(item=laptop, answers={}, requester=requester, created_by=requester)
    request_fulfil(request_id=by_handler.id, actor=None, note="Done by the automated tool.")
    request_fulfil(request_id=by_person.id, actor=agent, note="Handed over at the desk.")
    today = timezone.localdate()
    rollup_days([today])
    assert measure_values(period(boss, today, today))["automation_rate"] == 50.0


def test_the_standard_windows_times_are_those_of_the_tickets(week, make_user):
    """The rollup task's precomputed times equal the live ones for the windows it works out."""
    boss, agent_a, team_a = week["boss"], week["agent_a"], week["team_a"]
    today = timezone.localdate()
    # A resolution inside the last 7 days, so the short window has figures too.
    recent = incident_create(title="Printer", requester=boss, created_by=boss, assignment_group=team_a,
                             now=at(today - timedelta(days=2), 9))
    incident_transition(incident_id=recent.id, to=Status.RESOLVED, actor=boss, now=at(today - timedelta(days=2), 13),
                        resolution_code="fixed", resolution_notes="Paper.", force=True)
    rollup_run()
    assert WindowTimes.objects.filter(last_day=today).exists()
    for user, extra in ((boss, {}), (agent_a, {}), (boss, {"team": str(team_a.id)}),
                        (boss, {"service": str(week["s1"].id)})):
        for days in (7, 30):
            scope = period(user, today - timedelta(days=days - 1), today, **extra)
            assert time_figures(scope) == time_figures(scope, precomputed=False), (user, extra, days)
    seven = period(boss, today - timedelta(days=6), today)
    assert time_figures(seven)[("incident", None)]["now"]["resolve_mean"] == 4.0



def test_a_reopen_within_the_recent_days_is_recounted_by_the_next_run(make_user):
    boss = make_user("admin", username="boss")
    today = timezone.localdate()
    five_days_ago = today - timedelta(days=5)
    incident = incident_create(title="Scanner", requester=boss, created_by=boss, now=at(five_days_ago - timedelta(days=1), 9))
    incident_transition(incident_id=incident.id, to=Status.RESOLVED, actor=boss, now=at(five_days_ago, 9),
                        resolution_code="fixed", resolution_notes="Driver.", force=True)
    scope = period(boss, five_days_ago, five_days_ago)
    rollup_run()
    assert measure_values(scope)["resolved"] == 1
    incident_transition(incident_id=incident.id, to=Status.IN_PROGRESS, actor=boss, reason="Not fixed")
    rollup_run()  # resolved five days ago: within INSIGHTS_ROLLUP_RECENT_DAYS, which every run recounts
    assert measure_values(scope)["resolved"] == 0
