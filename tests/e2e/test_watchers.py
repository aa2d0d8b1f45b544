"""The Watchers card in a real browser: an agent adds a colleague by email address to an incident, sees a
clear message naming the field for someone unknown, removes the colleague again, and the requester's portal
page never shows who watches."""

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_agent_adds_and_removes_a_watcher_from_the_incident_page(new_page, live_server):
    from incidents.services import incident_create
    from servicedesk.watchers import watchers_of

    provision_user("agnes", "agent", name="Agnes Agent")
    requester = provision_user("rita", "requester", name="Rita Requester")
    colleague = provision_user("carl", "requester", name="Carl Colleague")
    incident = incident_create(title="Projector flickers in room 4", requester=requester, created_by=requester)

    page = new_page()
    login(page, live_server, "agnes")
    page.goto(f"{live_server.url}/agent/incidents/{incident.number}/")
    card = page.get_by_test_id("watchers")
    expect(card).to_contain_text("Nobody besides the requester hears of replies.")

    card.get_by_label("Add a watcher (username or email)").fill("nobody@example.com")
    card.get_by_role("button", name="Add").click()
    expect(page.get_by_text("user: nobody active has the username or email address 'nobody@example.com'")).to_be_visible()
    assert not watchers_of(incident).exists()

    card = page.get_by_test_id("watchers")
    card.get_by_label("Add a watcher (username or email)").fill("carl@example.com")
    card.get_by_role("button", name="Add").click()
    expect(page.get_by_text(f"Carl Colleague watches {incident.number} now.")).to_be_visible()
    card = page.get_by_test_id("watchers")
    expect(card.get_by_test_id("watcher")).to_have_count(1)
    expect(card.get_by_test_id("watcher")).to_contain_text("carl@example.com")
    assert [w.user_id for w in watchers_of(incident)] == [colleague.id]
    screenshot(page, "watchers-card")

    card.get_by_role("button", name="Remove Carl Colleague").click()
    expect(page.get_by_text(f"Carl Colleague no longer watches {incident.number}.")).to_be_visible()
    expect(page.get_by_test_id("watchers")).to_contain_text("Nobody besides the requester hears of replies.")
    assert not watchers_of(incident).exists()

    # The requester's page shows the conversation, not the desk's mailing list.
    requester_page = new_page()
    login(requester_page, live_server, "rita")
    requester_page.goto(f"{live_server.url}/portal/incidents/{incident.number}/")
    expect(requester_page.get_by_role("heading", name="Projector flickers in room 4")).to_be_visible()
    assert requester_page.get_by_test_id("watchers").count() == 0
