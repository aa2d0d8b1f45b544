"""Problems in admin: readable, never changed or deleted there (problems.services is the one way in)."""

import pytest
from django.contrib import admin

from problems import services
from problems.models import Problem
from servicedesk.admin import TicketAdmin

pytestmark = pytest.mark.django_db


def test_problems_are_a_ticket_admin_read_only_and_never_deleted(admin_client, agent, incident_factory):
    assert isinstance(admin.site._registry[Problem], TicketAdmin)
    incident = incident_factory()
    problem = services.problem_create(title="VPN drops hourly", created_by=agent, incidents=[incident])
    listing = admin_client.get("/admin/problems/problem/")
    assert listing.status_code == 200 and problem.number in listing.content.decode()
    page = admin_client.get(f"/admin/problems/problem/{problem.id}/change/")
    assert page.status_code == 200 and incident.number in page.content.decode()
    assert admin_client.post(f"/admin/problems/problem/{problem.id}/delete/", {"post": "yes"}).status_code == 403
    admin_client.post(f"/admin/problems/problem/{problem.id}/change/", {"title": "Changed"})
    assert Problem.objects.get(id=problem.id).title == "VPN drops hourly"
