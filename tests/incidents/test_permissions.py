"""A requester sees only what is theirs, through every endpoint, and never an internal note."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from incidents.services import incident_comment_add
from servicedesk.services import attachment_add
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_incident(requester, agent, incident_factory):
    incident = incident_factory(title="Alice's laptop will not boot", requester=requester)
    incident_comment_add(incident=incident, author=agent, body="Suspect the SSD; vendor ticket 4711", internal=True)
    incident_comment_add(incident=incident, author=agent, body="We are looking into it.")
    attachment_add(ticket=incident, upload=SimpleUploadedFile("boot.txt", b"log"), by=requester)
    return incident


def test_another_requester_cannot_list_read_comment_or_attach(client_for, other_requester, alices_incident):
    api = client_for(other_requester)
    number = alices_incident.number
    assert api.get("/api/v1/incidents/").json()["results"] == []
    assert api.get("/api/v1/incidents/?requester=alice").json()["results"] == []
    assert api.get(f"/api/v1/incidents/{number}/").status_code == 404
    assert api.get(f"/api/v1/incidents/{number}/comments/").status_code == 404
    assert api.post(f"/api/v1/incidents/{number}/comments/", {"body": "hi"}, format="json").status_code == 404
    assert api.get(f"/api/v1/incidents/{number}/attachments/").status_code == 404
    attachment_id = alices_incident_attachment_id(alices_incident)
    assert api.get(f"/api/v1/attachments/{attachment_id}/download/").status_code == 404


def test_a_missing_and_a_foreign_incident_look_the_same(client_for, other_requester, alices_incident):
    api = client_for(other_requester)
    foreign = api.get(f"/api/v1/incidents/{alices_incident.number}/")
    missing = api.get("/api/v1/incidents/INC9999999/")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()


def test_the_requester_sees_their_incident_but_not_the_internal_note(client_for, requester, alices_incident):
    api = client_for(requester)
    assert [i["number"] for i in api.get("/api/v1/incidents/").json()["results"]] == [alices_incident.number]
    timeline = api.get(f"/api/v1/incidents/{alices_incident.number}/comments/").json()
    bodies = [e["body"] for e in timeline]
    assert "We are looking into it." in bodies
    assert not any("SSD" in b for b in bodies)
    assert all(not e["internal"] for e in timeline)


def test_an_agent_sees_the_internal_note(client_for, agent, alices_incident):
    timeline = client_for(agent).get(f"/api/v1/incidents/{alices_incident.number}/comments/").json()
    notes = [e for e in timeline if e["kind"] == "note"]
    assert [n["body"] for n in notes] == ["Suspect the SSD; vendor ticket 4711"]
    assert notes[0]["internal"] is True


def test_a_requester_cannot_write_an_internal_note(client_for, requester, alices_incident):
    response = client_for(requester).post(
        f"/api/v1/incidents/{alices_incident.number}/comments/", {"body": "secret", "internal": True}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["internal"] == ["internal: only agents can write internal notes"]


def test_html_pages_keep_requesters_to_their_own(client, other_requester, requester, alices_incident):
    assert client.login(username="bob", password=PASSWORD)
    assert client.get(f"/portal/incidents/{alices_incident.number}/").status_code == 404
    assert client.get("/agent/").status_code == 403
    assert client.get(f"/agent/incidents/{alices_incident.number}/").status_code == 403
    assert alices_incident.title not in client.get("/portal/").content.decode()
    client.logout()
    assert client.login(username="alice", password=PASSWORD)
    page = client.get(f"/portal/incidents/{alices_incident.number}/").content.decode()
    assert "We are looking into it." in page
    assert "SSD" not in page


def alices_incident_attachment_id(incident):
    from servicedesk.models import Attachment

    return Attachment.objects.get(object_id=incident.id).id


def test_field_changes_stay_internal(client_for, requester, agent, alices_incident):
    from incidents import services

    services.incident_assign(incident_id=alices_incident.id, actor=agent, assignee=agent)
    services.incident_update(incident_id=alices_incident.id, actor=agent, urgency=1)
    kinds = [e["kind"] for e in client_for(requester).get(f"/api/v1/incidents/{alices_incident.number}/comments/").json()]
    assert "change" not in kinds
    agent_kinds = [e["kind"] for e in client_for(agent).get(f"/api/v1/incidents/{alices_incident.number}/comments/").json()]
    assert agent_kinds.count("change") == 2


def test_a_requester_cannot_post_through_the_agent_comment_route(client, requester, alices_incident):
    assert client.login(username="alice", password=PASSWORD)
    response = client.post(f"/agent/incidents/{alices_incident.number}/comment/", {"body": "hi"})
    assert response.status_code == 403
