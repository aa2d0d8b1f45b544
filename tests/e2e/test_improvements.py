"""The improvement register in a real browser: a manager records an improvement in the form (a first attempt
with no title shows the error on the field), sees it in the register with its before -> after, opens it, links
an incident, starts it; then subscribes to the weekly e-mail on its page and from the dashboard's button. An agent
sees the register read-only, without the figures of another team's improvement they own."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_manager_records_an_improvement_and_sees_it_in_the_register(new_page, live_server):
    from incidents.models import ResolutionCode
    from incidents.services import incident_create, incident_resolve
    from insights.models import Improvement, Subscription
    from servicedesk.models import Team

    alice = provision_user("alice", "requester", name="Alice Martin")
    provision_user("mona", "manager", name="Mona Lead")
    bob = provision_user("bob", "agent", name="Bob Keller")
    incident = incident_create(title="Toner empty on floor 3", requester=alice, created_by=alice)
    desk = Team.objects.get(name="Service Desk")
    ResolutionCode.objects.get_or_create(code="fixed", defaults={"label": "Fixed"})
    now = timezone.now()
    for days_ago, hours in ((20, 9), (12, 7), (3, 2)):  # two before the start (7 days ago), one after
        opened = now - timedelta(days=days_ago)
        old = incident_create(title="Toner again", requester=alice, created_by=alice, now=opened,
                              assignment_group=desk)
        incident_resolve(incident_id=old.id, actor=bob, resolution_code="fixed", resolution_notes="New toner.",
                         now=opened + timedelta(hours=hours))

    page = login(new_page(), live_server, "mona")
    page.goto(f"{live_server.url}/agent/insights/improvements/")
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    page.get_by_test_id("improvement-new").click()
    page.get_by_label("Why").fill("Printer incidents take a day to resolve; most are the same toner fault.")
    page.get_by_label("Measure", exact=True).select_option("resolve_mean")
    page.get_by_label("Team").select_option(label="Service Desk")
    page.get_by_label("Started").fill((timezone.localdate() - timedelta(days=7)).isoformat())
    page.get_by_label("Due").fill((timezone.localdate() + timedelta(days=21)).isoformat())
    page.get_by_label("Target").fill("4")
    page.get_by_test_id("improvement-save").click()
    expect(page.get_by_test_id("error-title")).to_be_visible()  # the title was left empty
    screenshot(page, "improvements-01-form-error")
    page.get_by_label("Title").fill("Answer toner incidents from a known error")
    page.locator("#id_tickets").fill(incident.number)
    page.get_by_test_id("improvement-save").click()

    expect(page.get_by_test_id("improvement-title")).to_have_text("Answer toner incidents from a known error")
    expect(page.get_by_test_id("improvement-status")).to_have_text("Planned")
    expect(page.get_by_test_id("linked-ticket")).to_contain_text(incident.number)
    expect(page.get_by_test_id("improvement-chart")).to_be_visible()
    expect(page.get_by_test_id("before-value")).to_have_text("8 h")  # (9 h + 7 h) / 2
    expect(page.get_by_test_id("after-value")).to_have_text("2 h")
    expect(page.get_by_test_id("verdict")).to_have_text("Better")
    page.get_by_test_id("move-in_progress").click()
    expect(page.get_by_test_id("improvement-status")).to_have_text("In progress")
    screenshot(page, "improvements-02-detail")

    page.goto(f"{live_server.url}/agent/insights/improvements/")
    row = page.get_by_test_id("improvement-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Answer toner incidents from a known error")
    expect(row.get_by_test_id("before-after")).to_contain_text("8 h → 2 h")
    screenshot(page, "improvements-03-register")
    assert Improvement.objects.get().team.name == "Service Desk"

    page.goto(f"{live_server.url}/agent/insights/subscriptions/")
    page.get_by_label("Weekday").select_option(label="Friday")
    page.get_by_test_id("subscribe").click()
    expect(page.get_by_test_id("subscription-row")).to_contain_text("Friday at 07:00")
    screenshot(page, "improvements-04-subscriptions")
    assert Subscription.objects.get().weekday == 4

    # "Email me this weekly" on the dashboard subscribes for the dashboard's team and comes back to it.
    Subscription.objects.all().delete()
    page.goto(f"{live_server.url}/agent/insights/?team={desk.id}")
    page.get_by_role("button", name="Email me this weekly").click()
    expect(page).to_have_url(f"{live_server.url}/agent/insights/?team={desk.id}")
    expect(page.get_by_test_id("messages")).to_contain_text("Weekly e-mail for Service Desk")
    made = Subscription.objects.get()
    assert (made.team, made.weekday, made.hour) == (desk, 0, 7)

    # An agent reads the register; the figures of an improvement of another team, even one they own, are not
    # shown to them.
    from insights.improvements import improvement_create

    root = provision_user("root", "admin", name="Ada Admin")
    network, _ = Team.objects.get_or_create(name="Network")
    improvement_create(actor=root, title="Faster network changes", why="Changes wait a week for the board.",
                       owner=bob, measure="resolve_mean", team=network)
    agent = login(new_page(), live_server, "bob")
    agent.goto(f"{live_server.url}/agent/insights/improvements/")
    expect(agent.get_by_test_id("improvement-row")).to_have_count(2)
    expect(agent.get_by_test_id("improvement-new")).to_have_count(0)
    theirs = agent.get_by_test_id("improvement-row").filter(has_text="Faster network changes")
    expect(theirs.get_by_test_id("before-after")).to_contain_text("– → –")
    expect(agent.get_by_test_id("figures-hidden-note")).to_contain_text("figures of teams you are not in")
    ours = agent.get_by_test_id("improvement-row").filter(has_text="Answer toner incidents")
    expect(ours.get_by_test_id("before-after")).to_contain_text("8 h → 2 h")
    screenshot(agent, "improvements-05-register-agent-figures-hidden")
    theirs.get_by_role("link", name="Faster network changes").click()
    expect(agent.get_by_test_id("figures-hidden")).to_be_visible()
    expect(agent.get_by_test_id("before-value")).to_have_text("–")
    screenshot(agent, "improvements-06-detail-figures-hidden")
    agent.go_back()
    agent.get_by_role("link", name="Answer toner incidents from a known error").click()
    expect(agent.get_by_test_id("move-done")).to_have_count(0)
