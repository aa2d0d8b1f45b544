"""Fixtures shared by insights' tests: the hand-computed week (tests/insights/test_measures.py's docstring
gives its figures)."""

from datetime import datetime, time, timedelta

import pytest
from django.db.models.functions import Coalesce
from django.utils import timezone

from incidents.models import Channel, Incident
from incidents.services import incident_assign, incident_create, incident_transition
from incidents.states import Status
from knowledge.models import Deflection, DeflectionOutcome
from servicedesk.models import Rating, Service, Team
from servicedesk.services import rating_give
from sla.models import ClockKind, ClockState, SlaClock


def at(day, hour, minute=0):
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


@pytest.fixture
def week(make_user):
    d0 = timezone.localdate() - timedelta(days=21)
    days = [d0 + timedelta(days=i) for i in range(7)]
    team_a, _ = Team.objects.get_or_create(name="Team A")
    team_b, _ = Team.objects.get_or_create(name="Team B")
    s1 = Service.objects.create(name="Email")
    s2 = Service.objects.create(name="VPN")
    boss = make_user("admin", username="boss")
    alice = make_user("requester", username="alice2")
    agent_a = make_user("agent", username="agent_a", teams=["Team A"])
    make_user("agent", username="agent_b", teams=["Team B"])

    def raise_(title, day, hour, team, service=None, channel=Channel.PORTAL):
        return incident_create(title=title, requester=alice, created_by=boss, service=service, channel=channel,
                               assignment_group=team, now=at(day, hour))

    def resolve(incident, day, hour):
        return incident_transition(incident_id=incident.id, to=Status.RESOLVED, actor=boss, now=at(day, hour),
                                   resolution_code="fixed", resolution_notes="Done.", force=True)

    def start(incident, day, hour):
        return incident_transition(incident_id=incident.id, to=Status.IN_PROGRESS, actor=agent_a,
                                   now=at(day, hour))

    i1 = raise_("Mail down", days[0], 9, team_a, s1)
    resolve(i1, days[0], 11)
    i2 = raise_("Mail slow", days[0], 10, team_a, s1)
    start(i2, days[0], 11)
    resolve(i2, days[1], 10)
    i3 = raise_("VPN drops", days[1], 9, team_a, s2)
    start(i3, days[1], 9)
    resolve(i3, days[1], 13)
    incident_transition(incident_id=i3.id, to=Status.IN_PROGRESS, actor=alice, reason="Still drops",
                        now=at(days[2], 8))
    resolve(i3, days[2], 15)
    i4 = raise_("Mail queue high", days[2], 9, team_b, s1, channel=Channel.MONITORING)
    i5 = raise_("Old printer", days[0] - timedelta(days=3), 9, team_a)
    i6 = raise_("Duplicate", days[3], 9, team_a)
    incident_transition(incident_id=i6.id, to=Status.CANCELLED, actor=boss, reason="Duplicate", now=at(days[3], 10))
    incident_assign(incident_id=i5.id, actor=boss, assignee=agent_a)
    # What the services stamp with the real clock, set to the fixture's times.
    for incident, responded in ((i1, at(days[0], 9, 30)), (i2, at(days[0], 12)), (i3, at(days[1], 10))):
        Incident.objects.filter(id=incident.id).update(first_responded_at=responded)
    for incident, score, comment, day in ((i1, 5, "Quick!", days[1]), (i2, 3, "", days[2])):
        rating = rating_give(ticket=Incident.objects.get(id=incident.id), by=alice, score=score, comment=comment)
        Rating.objects.filter(id=rating.id).update(created_at=at(day, 12), updated_at=at(day, 12))
    SlaClock.objects.filter(ticket_type="incident").update(state=ClockState.CANCELLED, stopped_at=None)
    for incident, state, day, hour in ((i1, ClockState.MET, days[0], 11), (i2, ClockState.BREACHED, days[1], 10),
                                       (i3, ClockState.MET, days[2], 15)):
        clock = SlaClock.objects.filter(ticket_type="incident", ticket_id=incident.id,
                                        kind=ClockKind.RESOLUTION).first()
        if clock is None:  # no policy matched: make the clock the fixture needs from the first one
            clock = SlaClock.objects.filter(ticket_type="incident", ticket_id=incident.id).first()
        SlaClock.objects.filter(id=clock.id).update(state=state, stopped_at=at(day, hour))
    for outcome, n in ((DeflectionOutcome.SOLVED, 3), (DeflectionOutcome.SUBMITTED, 1),
                       (DeflectionOutcome.OPENED, 1)):
        for _ in range(n):
            Deflection.objects.create(user=alice, query="mail", outcome=outcome, created_at=at(days[4], 12),
                                      updated_at=at(days[4], 12))
    # History: every row last changed when its last event happened, not when the test ran.
    Incident.objects.update(updated_at=Coalesce("closed_at", "resolved_at", "first_responded_at", "created_at"))
    SlaClock.objects.update(updated_at=Coalesce("stopped_at", "started_at"))
    return {"days": days, "boss": boss, "agent_a": agent_a, "team_a": team_a, "team_b": team_b, "s1": s1,
            "incidents": (i1, i2, i3, i4, i5, i6)}


