"""`version`: every action checks it whenever it is sent; the workspace always sends it, bulk actions per row."""

import re

import pytest
from django.contrib.messages import get_messages

from incidents import services
from incidents.models import Incident
from incidents.states import Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def bert(make_user):
    return make_user("agent", username="bert", first_name="Bert", last_name="Byte", teams=["Service Desk"])


def to_state(incident, state, agent):
    if state in (Status.IN_PROGRESS, Status.ON_HOLD, Status.RESOLVED):
        incident = services.incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    if state == Status.ON_HOLD:
        incident = services.incident_hold(incident_id=incident.id, actor=agent, hold_reason="awaiting_vendor")
    if state == Status.RESOLVED:
        incident = services.incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed",
                                             resolution_notes="Replaced the toner")
    return incident


ACTIONS = [
    (Status.NEW, "assign", {"assignee": "agnes"}),
    (Status.IN_PROGRESS, "hold", {"hold_reason": "awaiting_vendor"}),
    (Status.ON_HOLD, "resume", {}),
    (Status.IN_PROGRESS, "resolve", {"resolution_code": "fixed", "resolution_notes": "Rebooted"}),
    (Status.RESOLVED, "reopen", {"reason": "Still broken"}),
    (Status.RESOLVED, "close", {}),
    (Status.NEW, "cancel", {"reason": "Duplicate"}),
]


@pytest.mark.parametrize("state,action,body", ACTIONS, ids=[a[1] for a in ACTIONS])
def test_every_api_action_refuses_a_stale_version_and_changes_nothing(client_for, agent, bert, incident_factory,
                                                                      state, action, body):
    incident = to_state(incident_factory(), state, agent)
    read = incident.version
    services.incident_update(incident_id=incident.id, actor=bert, version=read, title="Printer jams on floor 3")
    before = Incident.objects.get(id=incident.id)

    api = client_for(agent)
    response = api.post(f"/api/v1/incidents/{incident.number}/{action}/", {**body, "version": read}, format="json")
    assert response.status_code == 409, response.json()
    assert response.json()["detail"].startswith(f"{incident.number} was changed by Bert Byte at ")
    after = Incident.objects.get(id=incident.id)
    assert (after.status, after.assignee_id, after.version) == (before.status, before.assignee_id, before.version)

    # With the version it now has, the same action goes through.
    fresh = api.post(f"/api/v1/incidents/{incident.number}/{action}/", {**body, "version": before.version},
                     format="json")
    assert fresh.status_code == 200, fresh.json()


def test_a_cancel_sent_after_someone_elses_edit_is_refused(client_for, agent, bert, incident_factory):
    incident = incident_factory()
    services.incident_update(incident_id=incident.id, actor=bert, version=1, urgency=1)
    response = client_for(agent).post(f"/api/v1/incidents/{incident.number}/cancel/", {"version": 1}, format="json")
    assert response.status_code == 409
    assert Incident.objects.get(id=incident.id).status == Status.NEW


# --- the workspace ---------------------------------------------------------------------------------


def test_the_queue_sends_each_rows_version_with_the_bulk_form(agent_client, agent, incident_factory):
    incident = services.incident_update(incident_id=incident_factory().id, actor=agent, urgency=2)
    html = agent_client.get("/agent/queue/all/").content.decode()
    assert (f'<input type="hidden" name="version_{incident.number}" value="{incident.version}" form="bulk-form">'
            in html)
    assert incident.version == 2


def test_bulk_reports_the_stale_rows_by_number_and_changes_the_others(agent_client, agent, bert, incident_factory):
    stale, current = incident_factory(title="Stale"), incident_factory(title="Current")
    services.incident_update(incident_id=stale.id, actor=bert, version=1, urgency=1)  # after the page was drawn
    response = agent_client.post("/agent/bulk/", {
        "numbers": [stale.number, current.number], "action": "cancel", "reason": "Duplicates",
        f"version_{stale.number}": "1", f"version_{current.number}": "1",
    })
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages[0] == "1 updated (cancel)."
    assert re.fullmatch(rf"Not changed: {stale.number} was changed by Bert Byte at .+; reload it and apply your "
                        "change again", messages[1]), messages
    assert Incident.objects.get(id=stale.id).status == Status.NEW
    assert Incident.objects.get(id=current.id).status == Status.CANCELLED


def test_bulk_refuses_a_version_that_is_not_a_number_before_touching_anything(agent_client, incident_factory):
    incident = incident_factory()
    response = agent_client.post("/agent/bulk/", {"numbers": [incident.number], "action": "assign_me",
                                                  f"version_{incident.number}": "latest"})
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == [f"Nothing changed: version_{incident.number}: give the version you read, a number."]
    assert Incident.objects.get(id=incident.id).assignee_id is None


def test_every_change_form_of_the_incident_page_carries_the_version(agent_client, agent, incident_factory):
    incident = services.incident_assign(incident_id=incident_factory().id, actor=agent, assignee=agent)
    html = agent_client.get(f"/agent/incidents/{incident.number}/?edit=urgency").content.decode()
    forms = re.findall(r'<form[^>]*method="post"[^>]*>(.*?)</form>', html, flags=re.S)
    changing = [f for f in forms if "csrfmiddlewaretoken" in f and 'name="body"' not in f]
    assert len(changing) >= 4  # actions, the open in-place edit, the parent link
    for form in changing:
        if 'name="to"' in form or 'name="field"' in form or 'name="parent"' in form:
            assert re.search(rf'name="version"[^>]*value="{incident.version}"|value="{incident.version}"[^>]*'
                             r'name="version"', form), form[:300]
