import pytest

from incidents import services
from servicedesk.models import Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client_for, agent):
    return client_for(agent)


@pytest.fixture
def incident(incident_factory):
    return incident_factory(title="Laptop fan screams", description="Since the BIOS update")


def url(incident, action=""):
    return f"/api/v1/incidents/{incident.number}/" + (f"{action}/" if action else "")


def test_the_whole_lifecycle_through_the_api(api, incident, agent):
    body = api.post(url(incident, "assign"), {"assignee": "agnes"}, format="json").json()
    assert (body["status"], body["assignee"]["username"]) == ("in_progress", "agnes")
    body = api.post(url(incident, "hold"), {"hold_reason": "awaiting_vendor", "reason": "RMA"}, format="json").json()
    assert (body["status"], body["hold_reason"]) == ("on_hold", "awaiting_vendor")
    assert api.post(url(incident, "resume"), {}, format="json").json()["status"] == "in_progress"
    body = api.post(url(incident, "resolve"), {"resolution_code": "fixed", "resolution_notes": "New fan"},
                    format="json").json()
    assert (body["status"], body["resolution_code"]) == ("resolved", "fixed")
    body = api.post(url(incident, "reopen"), {"reason": "Noise is back"}, format="json").json()
    assert (body["status"], body["reopen_count"]) == ("in_progress", 1)
    api.post(url(incident, "resolve"), {"resolution_code": "fixed", "resolution_notes": "Again"}, format="json")
    assert api.post(url(incident, "close"), {}, format="json").json()["status"] == "closed"


def test_an_illegal_action_is_a_409_with_a_message(api, incident):
    response = api.post(url(incident, "resume"), {}, format="json")
    assert response.status_code == 409
    assert response.json() == {"detail": "only an incident on hold can be resumed; this one is new"}
    response = api.post(url(incident, "close"), {}, format="json")
    assert response.status_code == 409
    assert "cannot become closed" in response.json()["detail"]


def test_resolve_without_code_and_notes_names_both_fields(api, incident):
    response = api.post(url(incident, "resolve"), {"resolution_code": "magic"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"resolution_code", "resolution_notes"}


def test_patch_with_a_stale_version_is_a_409_and_overwrites_nothing(api, incident, client_for, make_user):
    other = client_for(make_user("agent", username="olga", first_name="Olga", last_name="K"))
    version = api.get(url(incident)).json()["version"]
    assert other.patch(url(incident), {"version": version, "urgency": 1}, format="json").status_code == 200
    response = api.patch(url(incident), {"version": version, "title": "Mine"}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"].startswith(f"{incident.number} was changed by Olga K at ")
    current = api.get(url(incident)).json()
    assert current["title"] == "Laptop fan screams" and current["priority"] == 3


def test_patch_needs_the_version_and_refuses_status(api, incident):
    response = api.patch(url(incident), {"title": "x"}, format="json")
    assert response.status_code == 400 and "version" in response.json()
    response = api.patch(url(incident), {"version": 1, "status": "closed"}, format="json")
    assert response.status_code == 400
    assert "use the action endpoints" in response.json()["status"][0]


def test_patch_assigns_and_links_a_parent(api, incident, incident_factory):
    parent = incident_factory(title="Core switch down")
    team = Team.objects.get(name="Service Desk")
    body = api.patch(url(incident), {"version": 1, "parent": parent.number, "assignment_group": team.id,
                                     "assignee": "agnes", "major": False}, format="json").json()
    assert body["parent"] == parent.number
    assert body["assignee"]["username"] == "agnes" and body["status"] == "in_progress"
    assert api.get(url(parent)).json()["children"] == [incident.number]


def test_requesters_cannot_run_agent_actions(client_for, requester, incident):
    api = client_for(requester)
    assert api.post(url(incident, "assign"), {"assignee": "alice"}, format="json").status_code == 403
    assert api.patch(url(incident), {"version": 1, "title": "x"}, format="json").status_code == 403
    assert api.post(url(incident, "close"), {}, format="json").status_code == 403


def test_full_text_search_finds_words_in_comments_for_agents_only(api, client_for, requester, incident, agent):
    services.incident_comment_add(incident=incident, author=agent, body="Thermal paste dried out", internal=True)
    found = api.get("/api/v1/incidents/?q=thermal").json()["results"]
    assert [i["number"] for i in found] == [incident.number]
    assert api.get("/api/v1/incidents/?q=bios update").json()["results"][0]["number"] == incident.number
    assert api.get("/api/v1/incidents/?q=keyboard").json()["results"] == []
    # The requester must not learn what the internal note says by searching for it.
    assert client_for(requester).get("/api/v1/incidents/?q=thermal").json()["results"] == []
    assert len(client_for(requester).get("/api/v1/incidents/?q=fan").json()["results"]) == 1


def test_a_number_in_the_search_box_finds_that_ticket(api, incident, incident_factory):
    incident_factory(title="other")
    digits = str(int(incident.number[3:]))
    for q in (incident.number, incident.number.lower(), digits):
        assert [i["number"] for i in api.get(f"/api/v1/incidents/?q={q}").json()["results"]] == [incident.number]


def test_a_requester_reply_through_the_api_reopens_the_resolved_incident(client_for, requester, api, incident):
    api.post(url(incident, "resolve"), {"resolution_code": "fixed", "resolution_notes": "ok"}, format="json")
    response = client_for(requester).post(url(incident, "comments"), {"body": "Not fixed"}, format="json")
    assert response.status_code == 201
    assert api.get(url(incident)).json()["status"] == "in_progress"
