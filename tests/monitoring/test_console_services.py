"""monitoring.services: acknowledge (agents only, idempotent, a timeline line and an audit row) and link to an
incident (agents only, the incident must exist and be open, the line lands on its timeline)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.services import incident_resolve
from monitoring.services import alert_acknowledge, alert_link_incident
from servicedesk.errors import InvalidInput, NotAllowed, NotVisible
from servicedesk.models import AuditLog, TimelineEntry

from .console_data import fixed_code, make_alert, make_source

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(db):
    return make_source()


def _notes(incident):
    return list(TimelineEntry.objects.filter(object_id=incident.id, kind=TimelineEntry.Kind.SYSTEM,
                                             data__event__startswith="alert.").order_by("id"))


def test_it_acknowledges_an_alert_once_and_a_second_acknowledge_keeps_the_first(source, agent, make_user,
                                                                                 incident_factory):
    incident = incident_factory()
    alert = make_alert(source, incident=incident)
    first_at = timezone.now() - timedelta(minutes=3)
    alert_acknowledge(alert_id=alert.id, actor=agent, now=first_at)
    other = make_user("agent", username="otto")
    again = alert_acknowledge(alert_id=alert.id, actor=other)

    alert.refresh_from_db()
    assert (alert.acknowledged_at, alert.acknowledged_by) == (first_at, agent)
    assert (again.acknowledged_at, again.acknowledged_by_id) == (first_at, agent.id)
    notes = _notes(incident)
    assert len(notes) == 1 and notes[0].internal and "acknowledged by Agnes Agent" in notes[0].body
    assert AuditLog.objects.filter(action="alert.acknowledged", object_id=str(alert.id)).count() == 1


def test_acknowledging_an_alert_without_incident_writes_only_the_audit_row(source, agent):
    alert = make_alert(source, severity="warning")
    alert_acknowledge(alert_id=alert.id, actor=agent)
    assert AuditLog.objects.get(action="alert.acknowledged").actor == agent
    assert not TimelineEntry.objects.filter(data__event="alert.acknowledged").exists()


def test_a_requester_cannot_acknowledge_or_link(source, requester, incident_factory):
    alert = make_alert(source)
    with pytest.raises(NotAllowed) as error:
        alert_acknowledge(alert_id=alert.id, actor=requester)
    assert error.value.field == "actor"
    with pytest.raises(NotAllowed):
        alert_link_incident(alert_id=alert.id, incident_number=incident_factory().number, actor=requester)
    alert.refresh_from_db()
    assert alert.acknowledged_at is None and alert.incident_id is None


def test_an_unknown_alert_is_not_visible(agent):
    with pytest.raises(NotVisible):
        alert_acknowledge(alert_id=999999, actor=agent)


def test_it_links_an_alert_to_an_open_incident_by_number_however_typed(source, agent, incident_factory):
    incident = incident_factory()
    alert = make_alert(source, summary="API latency above 2 s")
    digits = str(int(incident.number[3:]))
    linked = alert_link_incident(alert_id=alert.id, incident_number=f" inc{digits} ", actor=agent)
    assert linked.incident_id == incident.id
    notes = _notes(incident)
    assert [n.data["event"] for n in notes] == ["alert.linked"]
    assert "API latency above 2 s" in notes[0].body and notes[0].internal
    assert AuditLog.objects.get(action="alert.linked").changes == {"incident": {"old": None, "new": incident.number}}
    # Linking again to the same incident changes nothing.
    alert_link_incident(alert_id=alert.id, incident_number=incident.number, actor=agent)
    assert len(_notes(incident)) == 1


def test_moving_an_alert_notes_both_incidents(source, agent, incident_factory):
    first, second = incident_factory(title="Checkout down"), incident_factory(title="Payments down")
    alert = make_alert(source, incident=first)
    alert_link_incident(alert_id=alert.id, incident_number=second.number, actor=agent)
    assert [n.data["event"] for n in _notes(first)] == ["alert.unlinked"]
    assert second.number in _notes(first)[0].body
    assert [n.data["event"] for n in _notes(second)] == ["alert.linked"]


@pytest.mark.parametrize("typed, says", [
    ("", "give the number"),
    ("hello", "not an incident number"),
    ("INC0999999", "there is no incident INC0999999"),
])
def test_linking_to_no_incident_is_refused_naming_the_incident(source, agent, typed, says):
    alert = make_alert(source)
    with pytest.raises(InvalidInput) as error:
        alert_link_incident(alert_id=alert.id, incident_number=typed, actor=agent)
    assert error.value.field == "incident" and says in error.value.message
    alert.refresh_from_db()
    assert alert.incident_id is None
    assert not AuditLog.objects.filter(action="alert.linked").exists()


def test_linking_to_a_resolved_incident_is_refused_and_changes_nothing(source, agent, incident_factory):
    fixed_code()
    open_one, done = incident_factory(), incident_factory(title="Old outage")
    incident_resolve(incident_id=done.id, actor=agent, resolution_code="fixed", resolution_notes="Rebooted")
    alert = make_alert(source, incident=open_one)
    with pytest.raises(InvalidInput) as error:
        alert_link_incident(alert_id=alert.id, incident_number=done.number, actor=agent)
    assert error.value.field == "incident" and "is resolved" in error.value.message
    alert.refresh_from_db()
    assert alert.incident_id == open_one.id
    assert _notes(open_one) == [] and _notes(done) == []
