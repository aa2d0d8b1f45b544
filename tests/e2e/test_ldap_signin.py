"""Signing in with a company directory account through the real login form, against a real slapd."""

import pytest
from playwright.sync_api import expect

from tests.peers_ldap import Slapd, configure_ldap

from .conftest import login, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def directory():
    with Slapd() as slapd:
        slapd.add_user("dora", "Dir-pass-1!", given="Dora", sn="Explorer", mail="dora@example.org")
        slapd.set_members("sd-agents", ["dora"])
        slapd.set_members("network", ["dora"])
        yield slapd


def test_a_directory_agent_signs_in_through_the_form_and_lands_on_the_agent_workspace(
        settings, directory, new_page, live_server):
    from django.contrib.auth import get_user_model

    from servicedesk.models import Team

    configure_ldap(settings, directory)
    Team.objects.create(name="Network")
    assert not get_user_model().objects.filter(username="dora").exists()

    page = login(new_page(), live_server, "dora", password="wrong-password")
    expect(page.get_by_test_id("login-error")).to_contain_text("Please enter a correct username and password")

    page = login(page, live_server, "dora", password="Dir-pass-1!")
    expect(page).to_have_url(f"{live_server.url}/agent/")
    expect(page.get_by_test_id("user-menu")).to_contain_text("Dora Explorer")
    expect(page.get_by_test_id("user-role")).to_have_text("agent")
    screenshot(page, "ldap-01-agent-workspace")

    dora = get_user_model().objects.get(username="dora")
    assert dora.email == "dora@example.org"
    assert list(dora.teams.values_list("name", flat=True)) == ["Network"]
