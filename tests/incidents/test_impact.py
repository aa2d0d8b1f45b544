"""Requesters state urgency; impact comes from the service (or the default); agents set both.
One rule (incidents.impact) for the portal, the API and the service layer."""

import pytest

from incidents import services
from incidents.models import Incident
from servicedesk.errors import InvalidInput
from servicedesk.models import AuditLog, Service

pytestmark = pytest.mark.django_db


@pytest.fixture
def payroll(db):
    return Service.objects.create(name="Payroll", default_impact=1)


def test_it_refuses_an_impact_sent_by_a_requester_through_the_api_naming_the_field(client_for, requester):
    response = client_for(requester).post(
        "/api/v1/incidents/", {"title": "Everything is down", "impact": 1, "urgency": 1}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == ["detail", "impact"]
    assert "urgency" in response.json()["impact"][0]
    assert Incident.objects.count() == 0
    assert not AuditLog.objects.filter(action="incident.created").exists()


def test_it_refuses_even_the_lowest_impact_from_a_requester(client_for, requester):
    response = client_for(requester).post("/api/v1/incidents/", {"title": "x", "impact": 3}, format="json")
    assert response.status_code == 400 and "impact" in response.json()


def test_a_requesters_incident_takes_the_impact_of_its_service(client_for, requester, payroll):
    response = client_for(requester).post(
        "/api/v1/incidents/", {"title": "Payslips are empty", "service": "Payroll", "urgency": 2}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert (response.json()["impact"], response.json()["urgency"], response.json()["priority"]) == (1, 2, 2)


def test_without_a_service_the_impact_is_the_lowest(client_for, requester):
    body = client_for(requester).post("/api/v1/incidents/", {"title": "Mouse", "urgency": 1}, format="json").json()
    assert (body["impact"], body["priority"]) == (3, 3)


def test_an_agent_sets_both_or_gets_the_services_default(client_for, agent, requester, payroll):
    api = client_for(agent)
    set_both = api.post("/api/v1/incidents/", {"title": "a", "requester": "alice", "service": "Payroll",
                                               "impact": 3, "urgency": 3}, format="json").json()
    assert (set_both["impact"], set_both["priority"]) == (3, 5)
    defaulted = api.post("/api/v1/incidents/", {"title": "b", "requester": "alice", "service": "Payroll",
                                                "urgency": 1}, format="json").json()
    assert (defaulted["impact"], defaulted["priority"]) == (1, 1)


def test_the_portal_uses_the_same_rule(client, requester, payroll):
    client.force_login(requester)
    # A forged form field: the portal has no impact field, and whatever is posted is not applied.
    response = client.post("/portal/report/", {"title": "Payslips are empty", "service": payroll.id, "urgency": 2,
                                               "impact": 3})
    assert response.status_code == 302
    incident = Incident.objects.get()
    assert (incident.impact, incident.urgency, incident.priority) == (1, 2, 2)  # the service's, not the posted one
    payroll.default_impact = 3
    payroll.save()
    client.post("/portal/report/", {"title": "Second", "service": payroll.id, "urgency": 2})
    assert Incident.objects.get(title="Second").impact == 3


def test_the_service_layer_refuses_a_requesters_impact_and_lets_the_system_set_one(requester):
    with pytest.raises(InvalidInput) as refused:
        services.incident_create(title="x", requester=requester, created_by=requester, impact=2)
    assert refused.value.field == "impact"
    # Monitoring raises incidents with no human creator: it may set the impact.
    system = services.incident_create(title="Disk full", requester=requester, created_by=None, impact=1, urgency=1)
    assert system.priority == 1


def test_admins_edit_the_default_impact_of_a_service(client, make_user, payroll):
    client.force_login(make_user("admin"))
    page = client.get(f"/admin/servicedesk/service/{payroll.id}/change/")
    assert 'name="default_impact"' in page.content.decode()
    response = client.post(f"/admin/servicedesk/service/{payroll.id}/change/",
                           {"name": "Payroll", "criticality": 3, "default_impact": 2, "active": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    payroll.refresh_from_db()
    assert payroll.default_impact == 2
