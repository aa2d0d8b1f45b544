"""A manager manages the team they lead in /admin/: adds a member through the autocomplete picker."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_manager_adds_a_member_to_their_team_with_the_picker_and_cannot_open_another_team(page, live_server):
    from servicedesk.models import AuditLog, Team, TeamMembership

    provision_user("maria", "manager", name="Maria Lopez")  # leads Service Desk
    provision_user("nico", "manager", name="Nico Berg", teams=["Network"])  # leads Network
    provision_user("omar", "agent", name="Omar Haddad", teams=[])
    provision_user("olivia", "requester", name="Olivia Requester")
    desk, network = Team.objects.get(name="Service Desk"), Team.objects.get(name="Network")

    login(page, live_server, "maria")
    page.goto(f"{live_server.url}/admin/servicedesk/team/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Service Desk")
    expect(page.locator("#result_list")).not_to_contain_text("Network")
    expect(page.get_by_role("link", name=re.compile("Add team"))).to_have_count(0)

    rows.first.get_by_role("link", name="Service Desk").click()
    expect(page.get_by_role("heading", name="Change team")).to_be_visible()
    expect(page.locator("div.field-name .readonly")).to_have_text("Service Desk")  # name and lead are fixed
    expect(page.locator("div.field-lead .readonly")).to_have_text("maria")
    page.get_by_label("Assignment strategy").select_option("round_robin")

    new_row = page.locator("#memberships-group tr.form-row:not(.has_original):not(.empty-form)").first
    new_row.locator(".select2-selection").click()
    search = page.locator(".select2-search__field")
    options = page.locator(".select2-results__option")
    search.fill("oli")
    expect(options).to_have_text(["No results found"])  # olivia is a requester: never offered
    search.fill("oma")
    expect(options).to_have_text(["omar"])
    screenshot(page, "admin-manager-member-picker")
    options.first.click()
    page.locator("input[name=_save]").click()

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    screenshot(page, "admin-manager-team-saved")
    assert TeamMembership.objects.filter(team=desk, user__username="omar").exists()
    desk.refresh_from_db()
    assert desk.assignment_strategy == "round_robin" and desk.name == "Service Desk"
    assert AuditLog.objects.filter(action="team.changed", actor__username="maria").exists()

    response = page.goto(f"{live_server.url}/admin/servicedesk/team/{network.id}/change/")
    assert response.status == 404
    assert not TeamMembership.objects.filter(team=network, user__username="omar").exists()
