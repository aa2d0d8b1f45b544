"""A requester learns only what concerns their own tickets: no routing facts, no usernames, no team rosters."""

import pytest

from incidents.services import incident_assign, incident_create, incident_hold
from servicedesk.models import Service, Team, TeamMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def round_robin(agent):
    team = Team.objects.get(name="Service Desk")
    team.assignment_strategy = Team.Strategy.ROUND_ROBIN
    team.save()
    return team


def test_the_api_timeline_never_shows_a_requester_the_routing_facts(client_for, requester, agent, round_robin):
    vpn = Service.objects.create(name="VPN", owner_team=round_robin)
    incident = incident_create(title="VPN down", requester=requester, created_by=requester, service=vpn)
    assert incident.assignee == agent  # routed to the team and auto-assigned: the facts exist

    agents_view = client_for(agent).get(f"/api/v1/incidents/{incident.number}/comments/").json()
    created = next(e for e in agents_view if e["data"].get("event") == "created")
    assert created["data"]["routed_to"] == "Service Desk" and created["data"]["auto_assigned"] == "agnes"

    requesters_view = client_for(requester).get(f"/api/v1/incidents/{incident.number}/comments/")
    assert requesters_view.status_code == 200
    created = next(e for e in requesters_view.json() if e["data"].get("event") == "created")
    assert created["data"] == {"event": "created"}
    text = requesters_view.content.decode()
    assert "routed_to" not in text and "auto_assigned" not in text and "priority" not in text


def test_a_requester_keeps_the_lifecycle_facts_of_their_timeline(client_for, requester, agent, incident_factory):
    incident = incident_factory()
    incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    incident_hold(incident_id=incident.id, actor=agent, hold_reason="awaiting_caller", reason="Which floor?")
    entries = client_for(requester).get(f"/api/v1/incidents/{incident.number}/comments/").json()
    held = next(e for e in entries if e["data"].get("event") == "held")
    assert held["data"] == {"event": "held", "old": "in_progress", "new": "on_hold",
                            "hold_reason": "awaiting_caller", "reason": "Which floor?"}


def test_filtering_by_another_username_answers_like_a_name_that_does_not_exist(client_for, requester,
                                                                                 other_requester, agent,
                                                                                 incident_factory):
    incident_factory(requester=other_requester, created_by=other_requester)
    incident_factory()
    api = client_for(requester)
    ghost = api.get("/api/v1/incidents/?requester=nobody-by-that-name")
    assert (ghost.status_code, ghost.json()["results"]) == (200, [])
    for real in ("/api/v1/incidents/?requester=bob", "/api/v1/incidents/?requester=agnes"):
        response = api.get(real)
        assert (response.status_code, response.json()) == (ghost.status_code, ghost.json()), real
    for query in ("assignee=agnes", "assignee=nobody-by-that-name"):
        assert api.get(f"/api/v1/incidents/?{query}").json() == ghost.json(), query
    # Their own name still filters.
    assert len(api.get("/api/v1/incidents/?requester=alice").json()["results"]) == 1


def test_a_requester_may_filter_by_the_agent_working_their_ticket(client_for, requester, agent, incident_factory):
    incident = incident_factory()
    incident_factory(title="Not assigned")
    incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    results = client_for(requester).get("/api/v1/incidents/?assignee=agnes").json()["results"]
    assert [r["number"] for r in results] == [incident.number]


def test_agents_still_filter_by_anyone_and_are_told_of_an_unknown_name(client_for, agent, other_requester,
                                                                       incident_factory):
    incident_factory(requester=other_requester, created_by=other_requester)
    api = client_for(agent)
    results = api.get("/api/v1/incidents/?requester=bob").json()["results"]
    assert [r["requester"]["username"] for r in results] == ["bob"]
    unknown = api.get("/api/v1/incidents/?requester=nobody-by-that-name")
    assert unknown.status_code == 400 and "requester" in unknown.json()


def test_the_teams_api_is_for_agents_only(client_for, requester, agent):
    assert TeamMembership.objects.filter(user=agent).exists()
    refused = client_for(requester).get("/api/v1/teams/")
    assert refused.status_code == 403
    assert "agnes" not in refused.content.decode()
    listed = client_for(agent).get("/api/v1/teams/").json()["results"]
    assert listed[0]["members"] == ["agnes"]
