"""/api/v1/sla/policies/ and /api/v1/sla/calendars/: read by agents, refused to requesters, constant queries."""

from datetime import date, time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from servicedesk.models import Service, Team
from sla.models import BusinessCalendar, EscalationStep, Holiday, SlaPolicy, WorkingInterval

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/sla/policies/", "/api/v1/sla/calendars/"])
def test_requesters_get_403_and_agents_200(client_for, requester, agent, path):
    assert client_for(requester).get(path).status_code == 403
    assert client_for(agent).get(path).status_code == 200


def test_a_policy_lists_its_targets_steps_and_calendar(client_for, agent, make_policy):
    vpn, team = Service.objects.create(name="VPN"), Team.objects.create(name="Network")
    policy = make_policy("VPN", order=1, ticket_type="change", service=vpn, targets=(2,))
    EscalationStep.objects.create(policy=policy, when="breach", action="reassign_team", team=team)

    rows = client_for(agent).get("/api/v1/sla/policies/?ticket_type=change").json()["results"]

    assert rows == [{
        "id": policy.id, "name": "VPN", "order": 1, "active": True, "ticket_type": "change", "priority": None,
        "service": {"id": vpn.id, "name": "VPN"}, "organisation": None,
        "calendar": {"id": policy.calendar_id, "name": "London office"}, "warning_percent": 75,
        "pause_statuses": ["on_hold:awaiting_caller"],
        "targets": [{"priority": 2, "first_response_minutes": 30, "resolution_minutes": 240}],
        "escalation_steps": [{"when": "breach", "action": "reassign_team", "team": {"id": team.id, "name": "Network"},
                              "webhook": None}],
    }]


def test_a_calendar_lists_its_intervals_and_holidays(client_for, agent):
    night = BusinessCalendar.objects.create(name="Night shift", timezone="Europe/Paris")
    WorkingInterval.objects.create(calendar=night, weekday=4, start=time(22), end=time(6))
    Holiday.objects.create(calendar=night, date=date(2026, 12, 25), name="Noël")

    row = client_for(agent).get(f"/api/v1/sla/calendars/{night.id}/").json()

    assert row == {"id": night.id, "name": "Night shift", "timezone": "Europe/Paris", "is_24x7": False,
                   "intervals": [{"weekday": 4, "start": "22:00:00", "end": "06:00:00", "overnight": True}],
                   "holidays": [{"date": "2026-12-25", "name": "Noël"}]}


def _queries(client, path) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries)


def _policies(n, office):
    team = Team.objects.create(name=f"Team {n}")
    for i in range(n):
        policy = SlaPolicy.objects.create(name=f"Bulk {n}-{i}", order=200 + i, ticket_type="bulk", calendar=office,
                                          service=Service.objects.create(name=f"Svc {n}-{i}"))
        policy.targets.create(priority=1, first_response_minutes=10, resolution_minutes=20)
        policy.targets.create(priority=2, first_response_minutes=20, resolution_minutes=40)
        policy.escalation_steps.create(when="breach", action="reassign_team", team=team)


def test_the_policy_list_costs_the_same_queries_for_2_and_20_rows(client_for, agent, office,
                                                                  django_assert_max_num_queries):
    client = client_for(agent)
    _policies(2, office)
    few = _queries(client, "/api/v1/sla/policies/?ticket_type=bulk")
    SlaPolicy.objects.filter(ticket_type="bulk").update(active=False)
    _policies(20, office)
    with django_assert_max_num_queries(few):
        response = client.get("/api/v1/sla/policies/?ticket_type=bulk&active=true")
    assert response.json()["count"] == 20


def test_the_calendar_list_costs_the_same_queries_for_2_and_20_rows(client_for, agent,
                                                                    django_assert_max_num_queries):
    client = client_for(agent)

    def calendars(n):
        for i in range(n):
            cal = BusinessCalendar.objects.create(name=f"Cal {n}-{i}")
            WorkingInterval.objects.create(calendar=cal, weekday=0, start=time(8), end=time(12))
            Holiday.objects.create(calendar=cal, date=date(2026, 1, 1), name="New Year")

    calendars(2)
    few = _queries(client, "/api/v1/sla/calendars/")
    calendars(18)
    with django_assert_max_num_queries(few):
        response = client.get("/api/v1/sla/calendars/")
    assert response.json()["count"] >= 20


def test_the_endpoints_are_documented_under_the_sla_tag(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("/api/v1/sla/policies/", "/api/v1/sla/policies/{id}/", "/api/v1/sla/calendars/",
                 "/api/v1/sla/calendars/{id}/"):
        assert schema["paths"][path]["get"]["tags"] == ["sla"], path
    assert "sla" in [tag["name"] for tag in schema["tags"]]
