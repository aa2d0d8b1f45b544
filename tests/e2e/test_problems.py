"""Problem management in a real browser: an agent creates a problem from three incidents with the queue's bulk
action, records the root cause and workaround, marks it a known error, resolves it with "resolve incidents",
and the incidents resolve (tasks run eagerly here)."""

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_agent_creates_a_problem_from_three_incidents_and_resolving_it_resolves_them(new_page, live_server):
    from incidents.models import Incident, ResolutionCode
    from incidents.services import incident_create

    ResolutionCode.objects.get_or_create(code="fixed", defaults={"label": "Fixed"})
    alice = provision_user("alice", "requester", name="Alice Martin")
    provision_user("bob", "agent", name="Bob Keller")
    incidents = [incident_create(title=f"VPN drops every hour ({where})", requester=alice, created_by=alice,
                                 description="The tunnel closes and I have to reconnect.")
                 for where in ("home", "office", "hotel")]

    agent = login(new_page(), live_server, "bob")
    agent.goto(f"{live_server.url}/agent/queue/all/")
    for incident in incidents:
        agent.locator(f'tr[data-number="{incident.number}"] input[data-row-check]').check()
    expect(agent.get_by_test_id("bulk-form")).to_contain_text("3 selected")
    screenshot(agent, "problems-01-bulk-selected")
    agent.get_by_test_id("bulk-problem-from-incidents").click()

    expect(agent.get_by_test_id("problem-status")).to_have_text("New")
    expect(agent.get_by_test_id("linked-row")).to_have_count(3)
    expect(agent.locator("#problem-chart[data-chart-drawn]")).to_have_count(1)
    number = agent.get_by_test_id("problem-number").inner_text()

    agent.get_by_test_id("edit-root_cause").click()
    agent.get_by_role("textbox", name="Root cause").fill("The VPN concentrator's idle timeout is 60 minutes.")
    agent.get_by_test_id("save-root_cause").click()
    expect(agent.get_by_test_id("value-root_cause")).to_contain_text("idle timeout is 60 minutes")
    agent.get_by_test_id("edit-workaround").click()
    agent.get_by_role("textbox", name="Workaround").fill("Turn on 'keep alive' in the VPN client settings.")
    agent.get_by_test_id("save-workaround").click()
    expect(agent.get_by_test_id("value-workaround")).to_contain_text("keep alive")
    agent.get_by_test_id("edit-five_whys").click()
    agent.get_by_label("One answer per line, in order").fill("The tunnel closes\nThe concentrator times it out")
    agent.get_by_test_id("save-five_whys").click()
    expect(agent.locator(".prb-whys li")).to_have_count(2)

    agent.get_by_test_id("action-known_error").get_by_role("button").click()
    expect(agent.get_by_test_id("problem-status")).to_have_text("Known error")
    screenshot(agent, "problems-02-known-error")

    agent.get_by_test_id("action-resolve").locator("summary").click()
    agent.get_by_label("Resolution notes").fill("Idle timeout raised to 12 hours on the concentrator.")
    agent.get_by_test_id("resolve-incidents").check()
    agent.get_by_test_id("confirm-resolve").click()
    expect(agent.get_by_test_id("problem-status")).to_have_text("Resolved")
    agent.reload()
    expect(agent.get_by_test_id("linked-status")).to_have_text(["Resolved"] * 3)
    screenshot(agent, "problems-03-resolved")
    assert set(Incident.objects.filter(id__in=[i.id for i in incidents]).values_list("status", flat=True)) == {
        "resolved"}

    agent.goto(f"{live_server.url}/agent/incidents/{incidents[0].number}/")
    expect(agent.get_by_test_id("linked-problem")).to_contain_text(number)
    agent.goto(f"{live_server.url}/agent/problems/measures/")
    expect(agent.get_by_test_id("incidents-per-problem")).to_have_text("3.0")
    screenshot(agent, "problems-04-measures")
    agent.set_viewport_size({"width": 390, "height": 844})
    agent.goto(f"{live_server.url}/agent/problems/{number}/")
    screenshot(agent, "problems-05-phone")
