"""Resolving a problem with resolve_incidents: a real Celery worker resolves its linked open incidents after
the commit, through incidents' services, and their requesters are mailed (a real SMTP sink)."""

import time

import pytest
from django.db import transaction

from incidents.models import Incident
from incidents.services import incident_create
from incidents.states import Status as IncidentStatus
from problems import services
from servicedesk.models import OutboxMessage

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_resolves_the_linked_open_incidents_and_their_requesters_hear_of_it(
        worker, smtp, make_user, agent, fixed_code):
    carla = make_user("requester", username="carla", email="carla@example.com", first_name="Carla")
    dan = make_user("requester", username="dan", email="dan@example.com", first_name="Dan")
    first = incident_create(title="VPN dropped at 10:00", requester=carla, created_by=carla)
    second = incident_create(title="VPN dropped again", requester=dan, created_by=dan)
    problem = services.problem_create(title="VPN drops every hour", created_by=agent, incidents=[first, second])
    smtp.messages.clear()
    with transaction.atomic():
        services.problem_resolve(problem_id=problem.id, actor=agent, resolution_notes="Renewed the certificate",
                                 resolve_incidents=True)
        assert Incident.objects.filter(status=IncidentStatus.RESOLVED).count() == 0  # nothing before the commit

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if Incident.objects.filter(id__in=[first.id, second.id], status=IncidentStatus.RESOLVED).count() == 2:
            break
        time.sleep(0.3)
    for incident in (first, second):
        incident.refresh_from_db()
        assert incident.status == IncidentStatus.RESOLVED
        assert incident.resolution_code == "fixed"
        assert incident.resolution_notes == f"Resolved with problem {problem.number}: Renewed the certificate"
    assert OutboxMessage.objects.get(handler="problems.resolve_incidents").state == "done"

    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and {"carla@example.com", "dan@example.com"} - {
            address for message in smtp.messages for address in message["to"]}:
        time.sleep(0.3)
    mailed = {address: message["data"] for message in smtp.messages for address in message["to"]}
    assert first.number in mailed["carla@example.com"] and "Renewed the certificate" in mailed["carla@example.com"]
    assert second.number in mailed["dan@example.com"]
