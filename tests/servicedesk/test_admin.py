"""Admin: configuration changes are audited with before and after, configuration in use is protected,
and managers manage only the teams they lead (with a member picker that works)."""

import pytest
from django.contrib.auth import get_user_model
from django.db.models import ProtectedError

from servicedesk.models import (
    AuditLog,
    ConfigurationItem,
    Organisation,
    Profile,
    Service,
    Team,
    TeamMembership,
    Webhook,
)
from tests.admin_forms import changeform_data

pytestmark = pytest.mark.django_db


def last_audit(action):
    return AuditLog.objects.filter(action=action).order_by("-id").first()


# --- audit of configuration changes ---------------------------------------------------------------


def test_it_audits_an_admin_change_with_readable_before_and_after(admin_client, admin_user):
    network, apps = Team.objects.create(name="Network"), Team.objects.create(name="Applications")
    vpn = Service.objects.create(name="VPN", owner_team=network, criticality=3)
    url = f"/admin/servicedesk/service/{vpn.id}/change/"
    data = changeform_data(admin_client.get(url))
    data.update(owner_team=str(apps.id), criticality="1")

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    log = last_audit("service.changed")
    assert log.actor == admin_user and log.object_repr == "VPN" and log.object_id == str(vpn.id)
    assert log.changes == {
        "before": {"owner_team": "Network", "criticality": 3},
        "after": {"owner_team": "Applications", "criticality": 1},
    }


def test_it_audits_an_addition_with_every_value_and_hides_secrets(admin_client):
    data = {"name": "Chat", "url": "https://hooks.example.com/x", "secret": "s3cret-value", "events": "[]",
            "active": "on"}

    response = admin_client.post("/admin/servicedesk/webhook/add/", data)

    assert response.status_code == 302
    log = last_audit("webhook.added")
    assert log.changes["before"] == {}
    assert log.changes["after"]["name"] == "Chat"
    assert log.changes["after"]["url"] == "https://hooks.example.com/x"
    assert log.changes["after"]["secret"] == "(hidden)"
    assert "s3cret-value" not in str(AuditLog.objects.values_list("changes", flat=True))


def test_it_audits_membership_changes_made_in_the_team_inline(admin_client, make_user):
    team = Team.objects.create(name="Network")
    nina = make_user("agent", username="nina")
    url = f"/admin/servicedesk/team/{team.id}/change/"
    data = changeform_data(admin_client.get(url))
    data["memberships-0-user"] = str(nina.id)

    assert admin_client.post(url, data).status_code == 302

    assert list(team.members.all()) == [nina]
    log = last_audit("team.changed")
    assert log.changes == {"before": {"team memberships": []}, "after": {"team memberships": ["nina in Network"]}}


def test_it_writes_no_row_for_a_save_that_changes_nothing(admin_client):
    org = Organisation.objects.create(name="Acme")
    url = f"/admin/servicedesk/organisation/{org.id}/change/"
    before = AuditLog.objects.count()

    assert admin_client.post(url, changeform_data(admin_client.get(url))).status_code == 302

    assert AuditLog.objects.count() == before


def test_the_delete_selected_action_audits_each_object_with_its_values(admin_client):
    orgs = [Organisation.objects.create(name=n, email_domain=f"{n.lower()}.example") for n in ("Acme", "Globex")]

    response = admin_client.post("/admin/servicedesk/organisation/", {
        "action": "delete_selected", "_selected_action": [o.id for o in orgs], "post": "yes"})

    assert response.status_code == 302
    assert not Organisation.objects.exists()
    logs = AuditLog.objects.filter(action="organisation.deleted").order_by("object_repr")
    assert [(log.object_repr, log.changes["before"]["email_domain"], log.changes["after"]) for log in logs] == [
        ("Acme", "acme.example", {}), ("Globex", "globex.example", {})]


def test_it_audits_a_user_edit_in_admin_without_the_password(admin_client, make_user):
    nina = make_user("agent", username="nina", first_name="Nina")
    url = f"/admin/auth/user/{nina.id}/change/"
    data = changeform_data(admin_client.get(url))
    data["first_name"] = "Nina-Maria"

    assert admin_client.post(url, data).status_code == 302

    log = last_audit("user.changed")
    assert log.changes == {"before": {"first_name": "Nina"}, "after": {"first_name": "Nina-Maria"}}


def test_it_audits_a_password_set_in_admin_without_its_value(admin_client, make_user):
    nina = make_user("agent", username="nina")
    new = "Another-pass-2026!"
    response = admin_client.post(f"/admin/auth/user/{nina.id}/password/",
                                 {"password1": new, "password2": new, "usable_password": "true"})
    assert response.status_code == 302
    nina.refresh_from_db()
    assert nina.check_password(new)
    log = last_audit("user.changed")
    assert log.object_id == str(nina.id) and log.actor.username == "root"
    assert log.changes == {"before": {"password": "(hidden)"}, "after": {"password": "(hidden) changed"}}
    assert new not in str(log.changes)


@pytest.mark.parametrize("model", ["outboxmessage", "webhookdelivery", "idempotencykey", "auditlog"])
def test_rows_the_application_writes_cannot_be_deleted_in_admin(admin_client, model):
    """Deleting a pending outbox row would drop a promised mail or webhook; none of these is deleted by hand."""
    page = admin_client.get(f"/admin/servicedesk/{model}/")
    assert page.status_code == 200
    assert b'value="delete_selected"' not in page.content
    assert admin_client.get(f"/admin/servicedesk/{model}/1/delete/").status_code == 403


# --- configuration in use is protected ------------------------------------------------------------


def test_the_admin_delete_page_names_what_still_uses_a_team_and_deletes_nothing(admin_client):
    team = Team.objects.create(name="Network")
    Service.objects.create(name="VPN", owner_team=team)
    ConfigurationItem.objects.create(name="core-router-1", owner_team=team)
    url = f"/admin/servicedesk/team/{team.id}/delete/"

    page = admin_client.get(url)

    assert page.status_code == 200
    assert page.context["protected"], "the page must say the team is still in use"
    text = page.content.decode()
    assert "would require deleting the following protected related objects" in text
    assert "VPN" in text and "core-router-1" in text
    admin_client.post(url, {"post": "yes"})
    assert Team.objects.filter(id=team.id).exists()
    assert Service.objects.get(name="VPN").owner_team == team
    assert not AuditLog.objects.filter(action="team.deleted").exists()


@pytest.mark.parametrize("what", ["service owner", "CI owner", "team lead", "organisation member"])
def test_configuration_in_use_cannot_be_deleted_even_outside_admin(what, make_user):
    team = Team.objects.create(name="Network")
    if what == "service owner":
        Service.objects.create(name="VPN", owner_team=team)
        target = team
    elif what == "CI owner":
        ConfigurationItem.objects.create(name="router", owner_team=team)
        target = team
    elif what == "team lead":
        lead = make_user("manager", username="maria", teams=["Network"])
        target = lead
    else:
        org = Organisation.objects.create(name="Acme")
        make_user("requester", username="alice", organisation="Acme")
        target = org
    with pytest.raises(ProtectedError):
        target.delete()
    assert type(target).objects.filter(pk=target.pk).exists()
    if what == "organisation member":
        assert Profile.objects.get(user__username="alice").organisation == target


# --- managers manage the teams they lead ----------------------------------------------------------


@pytest.fixture
def teams(make_user):
    maria = make_user("manager", username="maria", teams=["Service Desk"])
    nico = make_user("manager", username="nico", teams=["Network"])
    return {"maria": maria, "nico": nico, "mine": Team.objects.get(name="Service Desk"),
            "other": Team.objects.get(name="Network")}


@pytest.fixture
def manager_client(client, teams):
    client.force_login(teams["maria"])
    return client


def test_a_manager_lists_only_the_teams_they_lead(manager_client, teams):
    page = manager_client.get("/admin/servicedesk/team/")
    assert page.status_code == 200
    assert list(page.context["cl"].queryset) == [teams["mine"]]


def test_a_manager_cannot_open_or_change_another_leads_team(manager_client, teams):
    url = f"/admin/servicedesk/team/{teams['other'].id}/change/"
    assert manager_client.get(url).status_code == 404
    response = manager_client.post(url, {"name": "Mine now", "assignment_strategy": "manual"})
    assert response.status_code == 404
    teams["other"].refresh_from_db()
    assert teams["other"].name == "Network"


def test_a_manager_cannot_add_or_delete_teams(manager_client, teams):
    assert manager_client.get("/admin/servicedesk/team/add/").status_code == 403
    assert manager_client.post(f"/admin/servicedesk/team/{teams['mine'].id}/delete/", {"post": "yes"}).status_code \
        == 403
    assert Team.objects.filter(id=teams["mine"].id).exists()


def test_a_manager_adds_a_member_and_sets_the_strategy_but_not_the_name_or_lead(manager_client, teams, make_user):
    omar = make_user("agent", username="omar")
    team = teams["mine"]
    url = f"/admin/servicedesk/team/{team.id}/change/"
    page = manager_client.get(url)
    assert page.status_code == 200
    assert {"name", "lead"}.isdisjoint(page.context["adminform"].form.fields)
    data = changeform_data(page)
    extra = int(data["memberships-INITIAL_FORMS"])
    data.update({f"memberships-{extra}-user": str(omar.id), "assignment_strategy": "round_robin",
                 "email": "desk@example.com", "name": "Renamed", "lead": str(teams["nico"].id)})

    response = manager_client.post(url, data)

    assert response.status_code == 302, response.context and response.context["errors"]
    team.refresh_from_db()
    assert (team.name, team.lead, team.assignment_strategy, team.email) == (
        "Service Desk", teams["maria"], "round_robin", "desk@example.com")
    assert TeamMembership.objects.filter(team=team, user=omar).exists()
    log = last_audit("team.changed")
    assert log.actor == teams["maria"]
    assert log.changes["after"]["team memberships"] == ["maria in Service Desk", "omar in Service Desk"]
    assert log.changes["before"]["assignment_strategy"] == "manual"


def test_a_manager_cannot_add_a_requester_to_their_team(manager_client, teams, make_user):
    alice = make_user("requester", username="alice")
    url = f"/admin/servicedesk/team/{teams['mine'].id}/change/"
    data = changeform_data(manager_client.get(url))
    data[f"memberships-{data['memberships-INITIAL_FORMS']}-user"] = str(alice.id)

    response = manager_client.post(url, data)

    assert response.status_code == 200  # the form again, with the error on the picker
    assert "Select a valid choice" in response.content.decode()
    assert not TeamMembership.objects.filter(user=alice).exists()


def test_the_member_picker_answers_a_manager_with_agents_only(manager_client, teams, make_user):
    make_user("agent", username="nina")
    make_user("requester", username="nadia")

    response = manager_client.get("/admin/autocomplete/", {
        "app_label": "servicedesk", "model_name": "teammembership", "field_name": "user", "term": "n"})

    assert response.status_code == 200
    names = sorted(r["text"] for r in response.json()["results"])
    assert names == ["nico", "nina"]


def test_a_manager_still_cannot_browse_users_in_admin(manager_client, teams):
    assert manager_client.get("/admin/auth/user/").status_code == 403
    assert manager_client.get(f"/admin/auth/user/{teams['nico'].id}/change/").status_code == 403
    index = manager_client.get("/admin/")
    assert "/admin/auth/user/" not in index.content.decode()


def test_an_agent_gets_no_member_picker(client, make_user):
    agent = make_user("agent", username="agnes")
    client.force_login(agent)
    response = client.get("/admin/autocomplete/", {
        "app_label": "servicedesk", "model_name": "teammembership", "field_name": "user", "term": "a"})
    assert response.status_code in (302, 403)
    assert get_user_model().objects.filter(username="agnes").exists()


def test_an_admin_still_edits_every_team_with_name_and_lead(admin_client, teams):
    page = admin_client.get("/admin/servicedesk/team/")
    assert set(page.context["cl"].queryset) == {teams["mine"], teams["other"]}
    form = admin_client.get(f"/admin/servicedesk/team/{teams['other'].id}/change/").context["adminform"].form
    assert {"name", "lead"} <= set(form.fields)


def test_a_webhook_secret_is_never_in_the_audit_trail_when_changed(admin_client):
    hook = Webhook.objects.create(name="Chat", url="https://hooks.example.com/x", secret="old-secret")
    url = f"/admin/servicedesk/webhook/{hook.id}/change/"
    data = changeform_data(admin_client.get(url))
    data["secret"] = "new-secret"
    assert admin_client.post(url, data).status_code == 302
    assert last_audit("webhook.changed").changes == {
        "before": {"secret": "(hidden)"}, "after": {"secret": "(hidden) changed"}}
    stored = str(list(AuditLog.objects.values_list("changes", flat=True)))
    assert "old-secret" not in stored and "new-secret" not in stored
