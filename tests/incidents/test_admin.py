"""Incidents in admin: never deleted there; incident configuration in use is protected."""

import pytest
from django.contrib import admin
from django.core import checks
from django.db.models import ProtectedError

from incidents.models import AssignmentRule, CannedResponse, Category, Incident, ResolutionCode
from servicedesk.admin import TicketAdmin
from servicedesk.checks import ticket_admins_never_delete
from servicedesk.models import AuditLog, ConfigurationItem, Service, Team, Ticket

pytestmark = pytest.mark.django_db


def test_an_admin_cannot_delete_an_incident_in_admin(admin_client, incident_factory):
    incident = incident_factory()

    assert admin_client.get(f"/admin/incidents/incident/{incident.id}/delete/").status_code == 403
    assert admin_client.post(f"/admin/incidents/incident/{incident.id}/delete/", {"post": "yes"}).status_code == 403
    admin_client.post("/admin/incidents/incident/", {
        "action": "delete_selected", "_selected_action": [incident.id], "post": "yes"})

    assert Incident.objects.filter(id=incident.id).exists()
    assert incident.timeline.exists()
    changelist = admin_client.get("/admin/incidents/incident/")
    assert changelist.status_code == 200
    assert "delete_selected" not in changelist.context["cl"].model_admin.get_actions(changelist.wsgi_request)
    assert "delete_selected" not in changelist.content.decode()


def test_every_ticket_type_in_admin_is_a_ticket_admin():
    ticket_admins = {m: a for m, a in admin.site._registry.items() if issubclass(m, Ticket)}
    assert Incident in ticket_admins
    assert all(isinstance(a, TicketAdmin) for a in ticket_admins.values())
    assert ticket_admins_never_delete() == []


def test_a_system_check_fails_a_ticket_admin_that_could_delete():
    saved = admin.site._registry[Incident]
    admin.site._registry[Incident] = admin.ModelAdmin(Incident, admin.site)
    try:
        errors = ticket_admins_never_delete()
    finally:
        admin.site._registry[Incident] = saved
    assert [e.id for e in errors] == ["servicedesk.E001"]
    assert errors[0].level == checks.ERROR and "incidents.Incident" in errors[0].msg


def test_the_api_has_no_delete_for_incidents(client_for, make_user, incident_factory):
    incident = incident_factory()
    api = client_for(make_user("admin", username="root"))

    response = api.delete(f"/api/v1/incidents/{incident.number}/")

    assert response.status_code == 405
    assert Incident.objects.filter(id=incident.id).exists()
    schema = api.get("/api/schema/", {"format": "json"}).json()
    deletes = [p for p, ops in schema["paths"].items() if p.startswith("/api/v1/incidents") and "delete" in ops]
    # The only DELETE under incidents stops someone watching one; an incident itself is never deleted.
    assert deletes == ["/api/v1/incidents/{number}/watchers/{username}/"]


def test_deleting_a_team_used_by_rules_and_canned_responses_is_refused_naming_them(admin_client):
    team = Team.objects.create(name="Network")
    AssignmentRule.objects.create(name="VPN tickets", keywords="vpn", team=team)
    CannedResponse.objects.create(title="Router reboot", body="We rebooted it.", team=team)
    url = f"/admin/servicedesk/team/{team.id}/delete/"

    page = admin_client.get(url).content.decode()
    admin_client.post(url, {"post": "yes"})

    assert "would require deleting the following protected related objects" in page
    assert "VPN tickets -&gt; Network" in page and "Router reboot" in page
    assert Team.objects.filter(id=team.id).exists()
    assert AssignmentRule.objects.filter(team=team).count() == 1
    assert CannedResponse.objects.filter(team=team).count() == 1


def test_deleting_a_team_with_incidents_is_refused_instead_of_unassigning_them(incident_factory):
    team = Team.objects.create(name="Network")
    incident = incident_factory(assignment_group=team)
    with pytest.raises(ProtectedError):
        team.delete()
    incident.refresh_from_db()
    assert incident.assignment_group == team


@pytest.mark.parametrize("target", ["category", "parent category", "service", "configuration item"])
def test_configuration_a_rule_matches_on_cannot_be_deleted(target):
    team = Team.objects.create(name="Network")
    parent = Category.objects.create(name="Network")
    child = Category.objects.create(name="VPN", parent=parent)
    service = Service.objects.create(name="VPN")
    ci = ConfigurationItem.objects.create(name="vpn-gw-1")
    AssignmentRule.objects.create(name="rule", team=team, category=child, service=service, configuration_item=ci)
    obj = {"category": child, "parent category": parent, "service": service, "configuration item": ci}[target]

    with pytest.raises(ProtectedError):
        obj.delete()
    assert AssignmentRule.objects.count() == 1 and Category.objects.count() == 2


def test_a_resolution_code_incidents_use_cannot_be_deleted_and_admin_says_so(admin_client, incident_factory, agent):
    from incidents.services import incident_transition

    code = ResolutionCode.objects.get_or_create(code="fixed", defaults={"label": "Fixed"})[0]
    incident = incident_factory()
    incident_transition(incident_id=incident.id, to="resolved", actor=agent, resolution_code="fixed",
                        resolution_notes="Cleared the paper jam.")
    url = f"/admin/incidents/resolutioncode/{code.id}/delete/"

    page = admin_client.get(url)
    admin_client.post(url, {"post": "yes"})

    assert "1 incident resolved as “Fixed” (deactivate the code instead)" in page.content.decode()
    assert ResolutionCode.objects.filter(id=code.id).exists()
    assert not AuditLog.objects.filter(action="resolutioncode.deleted").exists()


def test_an_unused_resolution_code_can_be_deleted_and_is_audited(admin_client):
    code = ResolutionCode.objects.create(code="misrouted", label="Misrouted")
    response = admin_client.post(f"/admin/incidents/resolutioncode/{code.id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not ResolutionCode.objects.filter(id=code.id).exists()
    log = AuditLog.objects.get(action="resolutioncode.deleted")
    assert log.changes["before"]["code"] == "misrouted" and log.changes["after"] == {}


def test_a_resolution_codes_code_is_fixed_once_created(admin_client):
    code = ResolutionCode.objects.create(code="misrouted", label="Misrouted")
    form = admin_client.get(f"/admin/incidents/resolutioncode/{code.id}/change/").context["adminform"].form
    assert "code" not in form.fields and "label" in form.fields
