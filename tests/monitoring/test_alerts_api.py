"""/api/v1/alerts/: agents only (requesters 403, anonymous 401), open alerts by default with their incident's
number, the console's filters (bad ones a 400 naming them), a constant number of queries whatever the page
size, the detail and acknowledge (idempotent)."""

import pytest

from monitoring.models import Alert
from servicedesk.models import Service

from .console_data import make_alert, make_source

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(db):
    return make_source()


def test_requesters_get_403_and_strangers_401(source, requester, client_for, api_client):
    alert = make_alert(source)
    as_requester = client_for(requester)
    assert as_requester.get("/api/v1/alerts/").status_code == 403
    assert as_requester.get(f"/api/v1/alerts/{alert.id}/").status_code == 403
    assert as_requester.post(f"/api/v1/alerts/{alert.id}/acknowledge/").status_code == 403
    assert api_client.get("/api/v1/alerts/").status_code == 401
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_it_lists_firing_alerts_most_severe_first_with_their_incident(source, agent, client_for,
                                                                       incident_factory):
    incident = incident_factory()
    shop = Service.objects.create(name="Webshop")
    make_alert(source, "CPU high", severity="warning")
    make_alert(source, "Checkout down", severity="critical", incident=incident, service=shop, labels={"env": "prod"})
    make_alert(source, "Cleared", severity="critical", status=Alert.Status.RESOLVED)
    body = client_for(agent).get("/api/v1/alerts/").json()
    assert [row["summary"] for row in body["results"]] == ["Checkout down", "CPU high"]
    first = body["results"][0]
    assert first["incident"] == incident.number
    assert first["service"] == {"id": shop.id, "name": "Webshop"}
    assert first["source"] == {"id": source.id, "name": source.name}
    assert first["labels"] == {"env": "prod"} and first["status"] == "firing" and first["severity"] == "critical"
    assert body["results"][1]["incident"] is None
    assert {"count", "first_seen", "last_seen", "acknowledged_at", "flapping"} <= set(first)


def test_filters_state_severity_and_service_by_id_or_name(source, agent, client_for):
    shop, mail = Service.objects.create(name="Webshop"), Service.objects.create(name="Mail")
    make_alert(source, "Shop down", severity="critical", service=shop)
    make_alert(source, "Mail slow", severity="minor", service=mail)
    make_alert(source, "Shop recovered", severity="major", service=shop, status=Alert.Status.RESOLVED)
    api = client_for(agent)

    def summaries(query):
        response = api.get(f"/api/v1/alerts/?{query}")
        assert response.status_code == 200, response.content
        return [row["summary"] for row in response.json()["results"]]

    assert summaries("state=resolved") == ["Shop recovered"]
    assert summaries("state=live") == ["Shop down", "Shop recovered", "Mail slow"]
    assert summaries("severity=minor") == ["Mail slow"]
    assert summaries(f"service={shop.id}&state=live") == ["Shop down", "Shop recovered"]
    assert summaries("service=webshop") == ["Shop down"]
    assert summaries("service=Nowhere") == []


def test_bad_filters_are_a_400_naming_each(agent, client_for):
    response = client_for(agent).get("/api/v1/alerts/?state=burning&severity=fatal")
    assert response.status_code == 400
    assert set(response.json()) >= {"state", "severity"}


def test_the_list_costs_the_same_queries_for_3_and_40_alerts(source, agent, client_for, incident_factory,
                                                             django_assert_max_num_queries):
    api = client_for(agent)
    incident = incident_factory()
    shop = Service.objects.create(name="Webshop")

    def fill(n):
        for i in range(n):
            make_alert(source, f"Alert {i}", incident=incident, service=shop, acknowledged_by=agent)

    fill(3)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        assert len(api.get("/api/v1/alerts/").json()["results"]) == 3
    fill(37)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(api.get("/api/v1/alerts/?page_size=100").json()["results"]) == 40


def test_detail_shows_any_alert_and_404s_an_unknown_one(source, agent, client_for):
    gone = make_alert(source, "Long gone", status=Alert.Status.RESOLVED, live=False)
    api = client_for(agent)
    response = api.get(f"/api/v1/alerts/{gone.id}/")
    assert response.status_code == 200 and response.json()["live"] is False
    assert api.get("/api/v1/alerts/999999/").status_code == 404


def test_acknowledge_records_who_and_when_once(source, agent, make_user, client_for):
    alert = make_alert(source)
    first = client_for(agent).post(f"/api/v1/alerts/{alert.id}/acknowledge/")
    assert first.status_code == 200
    body = first.json()
    assert body["acknowledged_by"] == {"username": "agnes", "name": "Agnes Agent"}
    assert body["acknowledged_at"]
    second = client_for(make_user("agent", username="otto")).post(f"/api/v1/alerts/{alert.id}/acknowledge/")
    assert second.status_code == 200
    assert second.json()["acknowledged_by"]["username"] == "agnes"
    assert second.json()["acknowledged_at"] == body["acknowledged_at"]


def test_the_alerts_operations_are_in_the_schema_under_their_own_tag(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["paths"]["/api/v1/alerts/"]["get"]["tags"] == ["alerts"]
    assert "post" in schema["paths"]["/api/v1/alerts/{id}/acknowledge/"]
    names = {p["name"] for p in schema["paths"]["/api/v1/alerts/"]["get"]["parameters"]}
    assert {"state", "severity", "service", "q", "cursor", "page_size"} <= names
