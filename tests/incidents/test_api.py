import pytest

from incidents.models import Incident
from servicedesk.models import AuditLog, Service, Team, TimelineEntry

pytestmark = pytest.mark.django_db


def test_a_requester_raises_an_incident_and_gets_a_number_and_a_priority(client_for, requester):
    response = client_for(requester).post(
        "/api/v1/incidents/", {"title": "Outlook crashes", "urgency": 1}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    # Impact 3 (no service, so the default) x urgency 1.
    assert body["number"].startswith("INC") and body["priority"] == 3 and body["status"] == "new"
    assert body["requester"] == {"username": "alice", "name": "Alice Able"}
    assert body["channel"] == "api" and body["version"] == 1
    incident = Incident.objects.get(number=body["number"])
    assert TimelineEntry.objects.filter(object_id=incident.id, kind="system").count() == 1
    assert AuditLog.objects.filter(action="incident.created", object_id=str(incident.id)).exists()


def test_a_requester_cannot_raise_an_incident_in_someone_elses_name(client_for, requester, other_requester):
    response = client_for(requester).post(
        "/api/v1/incidents/", {"title": "x", "requester": "bob"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["requester"]["username"] == "alice"


def test_an_agent_raises_one_for_a_caller_with_service_by_name(client_for, agent, requester):
    team = Team.objects.create(name="Network")
    Service.objects.create(name="VPN", owner_team=team)
    response = client_for(agent).post(
        "/api/v1/incidents/",
        {"title": "VPN down", "requester": "alice", "service": "VPN", "channel": "phone", "impact": 1, "urgency": 1},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["requester"]["username"] == "alice"
    assert body["service"]["name"] == "VPN"
    assert body["assignment_group"] == {"id": team.id, "name": "Network"}  # routed to the service owner
    assert body["priority"] == 1 and body["channel"] == "phone"


def test_bad_input_names_each_field(client_for, agent):
    response = client_for(agent).post(
        "/api/v1/incidents/", {"title": "", "impact": 7, "service": "Nope", "requester": "ghost"}, format="json"
    )
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"title", "impact", "service", "requester"}
    assert errors["service"] == ["No service with id or name 'Nope'."]
    assert Incident.objects.count() == 0


@pytest.mark.parametrize("rows", [10, 100])
def test_the_list_runs_a_constant_number_of_queries(client_for, agent, requester, incident_factory, rows,
                                                    django_assert_max_num_queries):
    team = Team.objects.create(name="Apps")
    service = Service.objects.create(name="ERP", owner_team=team)
    for n in range(rows):
        incident_factory(title=f"ERP slow #{n}", service=service)
    api = client_for(agent)
    # token auth, role, the page, then one look-up per related kind (requesters, assignees, groups, services,
    # CIs, categories) by id: nothing per row.
    with django_assert_max_num_queries(9):
        response = api.get(f"/api/v1/incidents/?page_size={rows}")
    assert len(response.json()["results"]) == rows


def test_filters_narrow_the_list(client_for, agent, requester, incident_factory):
    incident_factory(title="a", impact=1, urgency=1, created_by=agent)
    incident_factory(title="b")
    api = client_for(agent)
    assert [i["title"] for i in api.get("/api/v1/incidents/?priority=1").json()["results"]] == ["a"]
    assert len(api.get("/api/v1/incidents/?status=new&requester=alice").json()["results"]) == 2
    assert api.get("/api/v1/incidents/?status=bogus").status_code == 400
