"""What people do to alerts in the event console: acknowledge one, link one to an incident. One function per
change, one transaction each, the alert row locked first (then the incident's), an audit row per change and a
system line on the incident's timeline through incidents' own service (incident_system_note).

Processing (monitoring.processing) writes the rest of an alert's life; these two functions only touch
`acknowledged_at/by` and `incident`, so they never fight processing over a field."""

from django.db import transaction
from django.utils import timezone

from incidents.models import Incident
from incidents.search import number_of
from incidents.services import incident_system_note
from incidents.states import OPEN as INCIDENT_OPEN
from monitoring.models import Alert
from servicedesk.errors import InvalidInput, NotAllowed, NotVisible
from servicedesk.roles import is_staff_role
from servicedesk.services import audit_record


def _who(user) -> str:
    return user.get_full_name() or user.username


def _check_agent(actor) -> None:
    if actor is None or not actor.is_authenticated or not is_staff_role(actor):
        raise NotAllowed("actor: only agents acknowledge and link alerts", field="actor")


def _lock(alert_id) -> Alert:
    try:
        return Alert.objects.select_for_update().get(id=alert_id)
    except (Alert.DoesNotExist, ValueError, TypeError):
        raise NotVisible(f"alert: there is no alert {alert_id}", field="alert") from None


@transaction.atomic
def alert_acknowledge(*, alert_id, actor, now=None) -> Alert:
    """Someone is on it. A second acknowledge (by anyone) changes nothing: the first time and person stay."""
    _check_agent(actor)
    alert = _lock(alert_id)
    if alert.acknowledged_at is not None:
        return alert  # idempotent: a retried or concurrent click keeps the first acknowledgement
    now = now or timezone.now()
    alert.acknowledged_at, alert.acknowledged_by = now, actor
    alert.save(update_fields=["acknowledged_at", "acknowledged_by", "updated_at"])
    audit_record(actor=actor, action="alert.acknowledged", obj=alert,
                 changes={"acknowledged_at": {"old": None, "new": now.isoformat()},
                          "acknowledged_by": {"old": None, "new": actor.username}})
    if alert.incident_id:
        incident_system_note(incident_id=alert.incident_id, actor=actor,
                             body=f"Alert acknowledged by {_who(actor)}: {alert.summary}",
                             data={"event": "alert.acknowledged", "alert": alert.id})
    return alert


@transaction.atomic
def alert_link_incident(*, alert_id, incident_number, actor) -> Alert:
    """Attach the alert to an open incident (e.g. one an agent raised by hand for the same outage). The
    incident's timeline gets a line; an incident the alert leaves gets one too. Linking to the incident it is
    already on changes nothing."""
    _check_agent(actor)
    text = str(incident_number or "").strip()
    if not text:
        raise InvalidInput("incident: give the number of an open incident, e.g. INC0001001", field="incident")
    number = number_of(text)
    if number is None:
        raise InvalidInput(f"incident: {text[:40]!r} is not an incident number (e.g. INC0001001)", field="incident")
    alert = _lock(alert_id)
    # Alert first, then incident: the same order as processing, so the two never deadlock.
    incident = Incident.objects.select_for_update().filter(number=number).only("id", "number", "status").first()
    if incident is None:
        raise InvalidInput(f"incident: there is no incident {number}", field="incident")
    if incident.status not in INCIDENT_OPEN:
        raise InvalidInput(f"incident: {incident.number} is {incident.get_status_display().lower()}; link the "
                           "alert to an open incident", field="incident")
    if alert.incident_id == incident.id:
        return alert
    previous_id = alert.incident_id
    previous = Incident.objects.filter(id=previous_id).values_list("number", flat=True).first() if previous_id else None
    alert.incident_id = incident.id
    alert.save(update_fields=["incident", "updated_at"])
    audit_record(actor=actor, action="alert.linked", obj=alert,
                 changes={"incident": {"old": previous, "new": incident.number}})
    incident_system_note(
        incident_id=incident.id, actor=actor,
        body=f"Alert linked by {_who(actor)}: {alert.summary} ({alert.get_severity_display().lower()}, "
             f"{alert.get_status_display().lower()})",
        data={"event": "alert.linked", "alert": alert.id, "from": previous})
    if previous_id:
        incident_system_note(incident_id=previous_id, actor=actor,
                             body=f"Alert moved to {incident.number} by {_who(actor)}: {alert.summary}",
                             data={"event": "alert.unlinked", "alert": alert.id, "to": incident.number})
    return alert
