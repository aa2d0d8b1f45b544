"""SLA clocks in the agent workspace, in a real browser: the "SLA due" column and its sort, the "Breaching
soon" queue, and the incident page's SLA panel explaining a deadline moved by a hold awaiting the caller."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from .conftest import SCREENSHOTS, login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sla_configuration():
    """The only active policy: 24x7 (so what the page says does not depend on the hour the test runs), 4 h to
    respond and 8 h to resolve; and a 3 h OLA for the Service Desk. (Whether the migrations' defaults are still
    there depends on which transactional test ran before.)"""
    from servicedesk.models import Team
    from sla.models import BusinessCalendar, OlaTarget, SlaPolicy, SlaTarget

    always = BusinessCalendar.objects.create(name="Always (browser test)", timezone="Europe/London", is_24x7=True)
    SlaPolicy.objects.update(active=False)
    policy = SlaPolicy.objects.create(name="Incidents 24x7", order=1, calendar=always)
    SlaTarget.objects.bulk_create([SlaTarget(policy=policy, priority=p, first_response_minutes=240,
                                             resolution_minutes=480) for p in range(1, 6)])
    desk = Team.objects.get(name="Service Desk")
    OlaTarget.objects.bulk_create([OlaTarget(team=desk, priority=p, minutes=180, calendar=always)
                                   for p in range(1, 6)])
    return desk


def raised(requester, title, ago, **kwargs):
    from django.utils import timezone

    from incidents.services import incident_create

    return incident_create(title=title, requester=requester, created_by=requester,
                           description=f"{title}. It started this morning.", now=timezone.now() - ago, **kwargs)


def test_an_agent_sees_the_sla_clocks_in_the_queues_and_why_a_deadline_moved(new_page, live_server):
    from django.utils import timezone

    from incidents.services import incident_transition

    alice = provision_user("alice", "requester", name="Alice Martin")
    dan = provision_user("dan", "requester", name="Dan Osei")
    bob = provision_user("bob", "agent", name="Bob Keller")
    desk = sla_configuration()
    now = timezone.now()

    # Raised 3 hours ago and started; on hold awaiting the caller from 2 hours ago until an hour ago.
    held = raised(alice, "VPN drops every ten minutes", timedelta(hours=3), assignment_group=desk)
    incident_transition(incident_id=held.id, to="in_progress", actor=bob, now=now - timedelta(hours=3))
    incident_transition(incident_id=held.id, to="on_hold", hold_reason="awaiting_caller", actor=bob,
                        reason="Which office are you working from?", now=now - timedelta(hours=2))
    incident_transition(incident_id=held.id, to="in_progress", actor=bob, now=now - timedelta(hours=1))
    late = raised(dan, "Payroll export fails with error 500", timedelta(hours=5))  # first response 1 h late
    soon = raised(alice, "Shared drive is read-only", timedelta(hours=3, minutes=30))  # 30 min left
    raised(dan, "New starter needs a laptop", timedelta(minutes=5))

    agent = login(new_page(), live_server, "bob")
    expect(agent.get_by_test_id("nav-queue-breaching").get_by_test_id("nav-count")).to_have_class(re.compile(r"\bhot\b"))
    screenshot(agent, "59-sla-dashboard")
    agent.goto(f"{live_server.url}/agent/queue/all/")
    table = agent.get_by_test_id("incident-table")
    expect(table.get_by_role("columnheader", name="SLA due")).to_be_visible()
    held_row = table.locator(f'[data-testid="incident-row"][data-number="{held.number}"]')
    # Its first response has 2 h left (the paused hour did not count); resolution and the OLA are not the row's.
    expect(held_row.get_by_test_id("sla-due")).to_have_text(re.compile(r"^\s*(1 h 59 min|2 h)\s*$"))
    expect(held_row.get_by_test_id("sla-due")).to_have_attribute("data-tone", "ok")
    expect(held_row.get_by_test_id("sla-due")).to_have_attribute("title", re.compile(r"^First response due \w+day"))
    expect(table.locator(f'[data-number="{late.number}"]').get_by_test_id("sla-due")).to_have_text(
        re.compile(r"late 1 h"))

    agent.get_by_test_id("sort-sla").click()
    expect(agent).to_have_url(re.compile(r"sort=sla"))
    numbers = agent.get_by_test_id("incident-row").evaluate_all("rows => rows.map(r => r.dataset.number)")
    assert numbers[:3] == [late.number, soon.number, held.number]
    screenshot(agent, "60-sla-queue-sorted-by-due")

    breaching = agent.get_by_test_id("nav-queue-breaching")
    expect(breaching.get_by_test_id("nav-count")).to_have_text("2")
    breaching.click()
    expect(agent).to_have_url(f"{live_server.url}/agent/queue/breaching/")
    expect(agent.get_by_test_id("queue-title")).to_have_text("Breaching soon")
    rows = agent.get_by_test_id("incident-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-number", late.number)  # most urgent first
    expect(rows.first.get_by_test_id("sla-due")).to_have_attribute("data-tone", "breached")
    expect(rows.nth(1).get_by_test_id("sla-due")).to_have_attribute("data-tone", "warning")
    screenshot(agent, "61-sla-breaching-soon-queue")

    agent.goto(f"{live_server.url}/agent/incidents/{held.number}/")
    panel = agent.get_by_test_id("sla-panel")
    expect(panel).to_contain_text("Incidents 24x7")
    clocks = panel.get_by_test_id("sla-clock")
    expect(clocks).to_have_count(3)
    resolution = panel.locator('[data-testid="sla-clock"][data-kind="resolution"]')
    expect(resolution.get_by_test_id("sla-state")).to_have_text("Running")
    expect(resolution.get_by_test_id("sla-remaining")).to_have_text(re.compile(r"^(5 h 59 min|6 h)$"))
    expect(panel.locator('[data-kind="ola"]')).to_contain_text("OLA · Service Desk")
    segments = resolution.get_by_test_id("sla-segments")
    expect(segments.locator("summary")).to_have_text("3 segments · paused 1 h")
    paused = segments.locator('[data-testid="sla-segment"][data-state="paused"]')
    expect(paused).not_to_be_visible()
    segments.locator("summary").click()
    expect(paused).to_be_visible()
    expect(paused).to_contain_text("On hold (awaiting caller)")
    expect(paused).to_contain_text("1 h")
    screenshot(agent, "62-sla-incident-panel")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(SCREENSHOTS / "63-sla-panel-close-up.png"))
