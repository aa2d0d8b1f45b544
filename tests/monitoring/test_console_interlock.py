"""The resolve interlock: an incident with a firing alert is refused resolution (service, API, page) until the
agent forces it; the page shows the objection in the Resolve panel with "Resolve anyway"."""

import pytest

from incidents.services import incident_resolve
from incidents.states import Status
from monitoring.models import Alert, MonitoringSettings
from servicedesk.errors import TransitionNotAllowed

from .console_data import fixed_code, make_alert, make_source

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(incident_factory):
    fixed_code()
    incident = incident_factory(title="Checkout down")
    make_alert(make_source(), "Checkout 5xx above 5%", incident=incident)
    return incident


def test_the_service_refuses_while_an_alert_fires_and_resolves_when_forced(incident, agent):
    with pytest.raises(TransitionNotAllowed) as error:
        incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed", resolution_notes="Rolled back")
    assert error.value.field == "force"
    assert "1 alert of this incident still fires: Checkout 5xx above 5%." in error.value.message
    incident.refresh_from_db()
    assert incident.status != Status.RESOLVED
    done = incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed",
                            resolution_notes="Rolled back", force=True)
    assert done.status == Status.RESOLVED


def test_a_cleared_alert_or_the_interlock_off_lets_it_resolve(incident, agent, incident_factory):
    Alert.objects.filter(incident=incident).update(status=Alert.Status.RESOLVED)
    assert incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed",
                            resolution_notes="Recovered").status == Status.RESOLVED
    other = incident_factory(title="Mail slow")
    make_alert(make_source(), "Mail queue", incident=other)
    MonitoringSettings.objects.update_or_create(pk=1, defaults={"resolve_interlock": False})
    assert incident_resolve(incident_id=other.id, actor=agent, resolution_code="fixed",
                            resolution_notes="Drained").status == Status.RESOLVED


def test_the_api_answers_409_naming_force_until_it_is_sent(incident, agent, client_for):
    api = client_for(agent)
    body = {"resolution_code": "fixed", "resolution_notes": "Rolled back"}
    refused = api.post(f"/api/v1/incidents/{incident.number}/resolve/", body, format="json")
    assert refused.status_code == 409 and "still fires" in refused.json()["detail"]
    forced = api.post(f"/api/v1/incidents/{incident.number}/resolve/", {**body, "force": True}, format="json")
    assert forced.status_code == 200 and forced.json()["status"] == "resolved"


def test_the_resolve_panel_warns_and_offers_resolve_anyway(incident, agent_client):
    html = agent_client.get(f"/agent/incidents/{incident.number}/").content.decode()
    warning = html.split('data-testid="resolve-objections"')[1].split("</div>\n          </div>")[0]
    assert "1 alert of this incident still fires: Checkout 5xx above 5%." in warning
    assert 'name="force" value="1"' in warning and "Resolve anyway" in warning


def test_the_page_refuses_without_the_checkbox_and_resolves_with_it(incident, agent_client):
    form = {"to": "resolved", "version": incident.version, "resolution_code": "fixed",
            "resolution_notes": "Rolled back the release"}
    refused = agent_client.post(f"/agent/incidents/{incident.number}/transition/", form)
    assert refused.status_code == 409
    html = refused.content.decode()
    assert "still fires" in html and "Resolve anyway" in html
    assert "Rolled back the release" in html  # the panel stays open with what was typed
    incident.refresh_from_db()
    assert incident.status != Status.RESOLVED

    done = agent_client.post(f"/agent/incidents/{incident.number}/transition/", {**form, "force": "1"})
    assert done.status_code == 302
    incident.refresh_from_db()
    assert incident.status == Status.RESOLVED


def test_no_warning_on_an_incident_without_firing_alerts(incident_factory, agent_client):
    quiet = incident_factory(title="Printer jammed")
    assert 'data-testid="resolve-objections"' not in agent_client.get(f"/agent/incidents/{quiet.number}/").content.decode()
