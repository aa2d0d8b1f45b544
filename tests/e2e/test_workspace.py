"""The agent workspace in a real browser: an incident triaged from the queue to resolved, two agents
editing the same incident, bulk actions and saved views, and the same flows without JavaScript."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NOTE = "Mail server certificate expired at 09:12; renewing it with the vendor now."
CANNED_BODY = ("Hi {requester_first_name},\n\nThanks for reporting {number}. I am looking into it now "
               "and will update you here.\n\n{agent_name}, Service Desk")


def reference_data():
    """Resolution codes and a canned response. Transactional tests flush the tables between tests, so the
    rows the migrations seed are gone: make what these tests need."""
    from incidents.models import CannedResponse, ResolutionCode

    for order, (code, label) in enumerate([("fixed", "Fixed"), ("workaround", "Workaround applied")]):
        ResolutionCode.objects.get_or_create(code=code, defaults={"label": label, "order": order})
    CannedResponse.objects.get_or_create(title="Acknowledge", defaults={"body": CANNED_BODY})
    CannedResponse.objects.get_or_create(title="Need more details",
                                         defaults={"body": "Could you send a screenshot of the error, please?"})


def create_incident(requester, title, **kwargs):
    from incidents.services import incident_create

    kwargs.setdefault("description", f"{title}. It started this morning.")
    kwargs.setdefault("created_by", requester)
    return incident_create(title=title, requester=requester, **kwargs)


def no_reload_marker(page):
    """Mark the page's window: the mark survives htmx swaps, not a navigation."""
    page.evaluate("window.__stay = 'same-page'")


def assert_same_page(page):
    assert page.evaluate("window.__stay") == "same-page", "the page reloaded instead of swapping a part"


def test_an_agent_triages_an_incident_from_the_queue_to_resolved(new_page, live_server, mailoutbox):
    from incidents.models import Incident
    from incidents.services import incident_assign

    reference_data()
    alice = provision_user("alice", "requester", name="Alice Martin")
    dan = provision_user("dan", "requester", name="Dan Osei")
    bob = provision_user("bob", "agent", name="Bob Keller")
    target = create_incident(alice, "Outlook cannot reach the mail server", urgency=1, impact=2, created_by=bob)
    create_incident(dan, "Request for a second monitor cable", urgency=3)
    theirs = create_incident(dan, "Laptop fan is very loud", urgency=2)
    incident_assign(incident_id=theirs.id, actor=bob, assignee=bob)
    reply_start = "Hi Alice,\n\nThanks for reporting " + target.number

    agent = login(new_page(), live_server, "bob")
    expect(agent).to_have_url(f"{live_server.url}/agent/")
    expect(agent.get_by_test_id("tile-unassigned").locator(".value")).to_have_text("2")
    screenshot(agent, "20-workspace-dashboard")

    # "g u" opens the unassigned queue; its sidebar entry is current and counts the rows.
    agent.keyboard.press("g")
    agent.keyboard.press("u")
    expect(agent).to_have_url(f"{live_server.url}/agent/queue/unassigned/")
    unassigned = agent.get_by_test_id("nav-queue-unassigned")
    expect(unassigned).to_have_attribute("aria-current", "page")
    expect(unassigned.get_by_test_id("nav-count")).to_have_text("2")
    rows = agent.get_by_test_id("incident-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-number", target.number)  # most urgent first
    expect(agent.get_by_test_id("incident-table")).not_to_contain_text("Laptop fan is very loud")
    screenshot(agent, "21-workspace-unassigned-queue")

    # j focuses the first row, x selects it (the bulk bar counts it), x again clears it, o opens it.
    agent.keyboard.press("j")
    expect(rows.first).to_have_class(re.compile(r"\bis-focused\b"))
    agent.keyboard.press("x")
    expect(rows.first.get_by_test_id("row-check")).to_be_checked()
    expect(agent.get_by_test_id("bulk-form")).to_contain_text("1 selected")
    screenshot(agent, "22-workspace-row-selected-with-keyboard")
    agent.keyboard.press("x")
    expect(rows.first.get_by_test_id("row-check")).not_to_be_checked()
    agent.keyboard.press("o")
    expect(agent).to_have_url(f"{live_server.url}/agent/incidents/{target.number}/")
    expect(agent.get_by_test_id("incident-status")).to_have_text("New")
    expect(agent.get_by_test_id("incident-priority")).to_have_text("P2")
    screenshot(agent, "23-workspace-incident-new")

    # Assign to me: the action button, which starts the incident.
    agent.get_by_test_id("action-assign_me").get_by_role("button").click()
    expect(agent.get_by_test_id("messages")).to_contain_text("Assigned to you. It is now in progress.")
    expect(agent.get_by_test_id("incident-status")).to_have_text("In progress")
    expect(agent.get_by_test_id("value-assignee")).to_have_text("Bob Keller")
    actions = agent.get_by_test_id("actions")
    expect(actions.locator("[data-to]")).to_have_count(3)  # in progress -> on hold, resolved, cancelled
    expect(actions).to_contain_text("Put on hold")
    screenshot(agent, "24-workspace-incident-assigned")

    # Urgency, edited in place: the little form arrives by htmx and the header follows without a reload.
    no_reload_marker(agent)
    agent.get_by_test_id("edit-urgency").click()
    form = agent.get_by_test_id("edit-form-urgency")
    expect(form).to_be_visible()
    expect(agent.get_by_label("Urgency", exact=True)).to_be_focused()
    screenshot(agent, "25-workspace-editing-urgency")
    agent.get_by_label("Urgency", exact=True).select_option(label="2 · Medium")
    form.get_by_test_id("edit-save").click()
    expect(agent.get_by_test_id("alert-success")).to_contain_text("Urgency saved. Priority is now P3 (was P2).")
    expect(agent.get_by_test_id("value-urgency")).to_have_text("2 · Medium")
    expect(agent.get_by_test_id("incident-priority")).to_have_text("P3")
    expect(agent.get_by_test_id("edit-form-urgency")).to_have_count(0)
    expect(agent.locator('[data-testid="timeline-entry"][data-kind="change"]').last).to_contain_text("Urgency")
    assert_same_page(agent)
    version = Incident.objects.get(id=target.id).version
    expect(agent.get_by_test_id("incident-version")).to_have_text(f"v{version}")
    # The buttons now carry the new version: a later action is not refused as stale.
    assert agent.locator('[data-testid="action-hold"] input[name="version"]').input_value() == str(version)
    screenshot(agent, "26-workspace-urgency-saved-in-place")

    # An internal note.
    agent.get_by_label("Reply to Alice Martin").fill(NOTE)
    agent.get_by_test_id("internal-checkbox").check()
    agent.get_by_test_id("reply-submit").click()
    expect(agent.get_by_test_id("messages")).to_contain_text("Internal note added.")
    expect(agent.locator('[data-testid="timeline-entry"][data-kind="note"]')).to_contain_text(NOTE)

    # A public reply from a canned response, filled in for this incident.
    agent.get_by_test_id("canned-select").select_option(label="Acknowledge")
    body = agent.get_by_label("Reply to Alice Martin")
    expect(body).to_have_value(re.compile("^" + re.escape(reply_start)))
    expect(body).to_have_value(re.compile("Bob Keller, Service Desk$"))
    expect(agent.get_by_test_id("canned-select")).to_have_value("")
    screenshot(agent, "27-workspace-canned-reply")
    agent.get_by_test_id("reply-submit").click()
    expect(agent.get_by_test_id("messages")).to_contain_text("Reply sent.")
    expect(agent.locator('[data-testid="timeline-entry"][data-kind="comment"]')).to_contain_text(
        "I am looking into it now")

    # Resolve: code and notes in the action's panel.
    agent.get_by_test_id("action-resolve").locator("summary").click()
    panel = agent.get_by_test_id("action-resolve").locator("form")
    expect(panel).to_be_visible()
    panel.get_by_label("Resolution code").select_option(label="Fixed")
    panel.get_by_label("Resolution notes").fill("Renewed the mail server certificate; Outlook connects again.")
    screenshot(agent, "28-workspace-resolve-panel")
    agent.get_by_test_id("confirm-resolve").click()
    expect(agent.get_by_test_id("messages")).to_contain_text(f"{target.number} is resolved.")
    expect(agent.get_by_test_id("incident-status")).to_have_text("Resolved")
    expect(agent.get_by_test_id("actions").locator("[data-to]")).to_have_count(2)  # close, reopen
    screenshot(agent, "29-workspace-incident-resolved")

    resolved = Incident.objects.get(id=target.id)
    assert (resolved.status, resolved.assignee, resolved.urgency, resolved.resolution_code) == (
        "resolved", bob, 2, "fixed")

    # The requester sees the public reply and the resolution, never the note.
    requester = login(new_page(), live_server, "alice")
    requester.goto(f"{live_server.url}/portal/incidents/{target.number}/")
    conversation = requester.get_by_test_id("conversation")
    expect(conversation).to_contain_text(f"Thanks for reporting {target.number}")
    expect(conversation).to_contain_text("Bob Keller")
    expect(requester.get_by_test_id("status-plain").first).to_have_text("Resolved")
    assert NOTE not in requester.content()
    assert "certificate expired" not in requester.content()
    expect(requester.locator('[data-internal="true"]')).to_have_count(0)
    screenshot(requester, "30-portal-sees-reply-not-note")
    assert all(NOTE not in m.body for m in mailoutbox)


def test_the_second_of_two_agents_editing_one_incident_sees_the_conflict(new_page, live_server):
    from incidents.models import Incident

    reference_data()
    alice = provision_user("alice", "requester", name="Alice Martin")
    provision_user("bob", "agent", name="Bob Keller")
    provision_user("carol", "agent", name="Carol Diaz")
    incident = create_incident(alice, "Shared drive is read-only", urgency=3)
    url = f"{live_server.url}/agent/incidents/{incident.number}/"

    bob = login(new_page(), live_server, "bob")
    carol = login(new_page(), live_server, "carol")
    bob.goto(url)
    carol.goto(url)  # both read version 1

    bob.get_by_test_id("edit-urgency").click()
    bob.get_by_label("Urgency", exact=True).select_option("1")
    bob.get_by_test_id("edit-form-urgency").get_by_test_id("edit-save").click()
    expect(bob.get_by_test_id("alert-success")).to_contain_text("Urgency saved")

    no_reload_marker(carol)
    carol.get_by_test_id("edit-impact").click()
    carol.get_by_label("Impact", exact=True).select_option("1")
    carol.get_by_test_id("edit-form-impact").get_by_test_id("edit-save").click()
    conflict = carol.get_by_test_id("alert-conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text("Not saved: someone else changed this incident.")
    expect(conflict).to_contain_text(f"{incident.number} was changed by Bob Keller at")
    expect(conflict).to_contain_text("reload it and apply your change again")
    expect(carol.get_by_test_id("edit-form-impact")).to_be_visible()  # what she chose is still there
    assert_same_page(carol)
    screenshot(carol, "31-workspace-conflict")
    stored = Incident.objects.get(id=incident.id)
    assert (stored.impact, stored.urgency, stored.version) == (3, 1, 2)

    conflict.get_by_test_id("reload-link").click()
    expect(carol.get_by_test_id("value-urgency")).to_have_text("1 · High")
    carol.get_by_test_id("edit-impact").click()
    carol.get_by_label("Impact", exact=True).select_option("1")
    carol.get_by_test_id("edit-form-impact").get_by_test_id("edit-save").click()
    expect(carol.get_by_test_id("alert-success")).to_contain_text("Priority is now P1 (was P3).")
    expect(carol.get_by_test_id("incident-priority")).to_have_text("P1")
    screenshot(carol, "32-workspace-after-reload-saved")


def test_bulk_actions_saved_views_and_a_major_incident(new_page, live_server):
    from incidents.models import Incident
    from incidents.services import incident_assign, incident_update

    reference_data()
    alice = provision_user("alice", "requester", name="Alice Martin")
    dan = provision_user("dan", "requester", name="Dan Osei")
    bob = provision_user("bob", "agent", name="Bob Keller")
    major = create_incident(alice, "Checkout returns 502 for every customer", impact=1, urgency=1, major=True,
                            created_by=bob)
    children = [create_incident(who, title, urgency=2) for who, title in (
        (alice, "Cannot pay for my order"), (dan, "Shop says 'bad gateway'"), (dan, "Payment page is blank"))]
    for child in children:
        incident_update(incident_id=child.id, actor=bob, parent=major)
    working = [create_incident(dan, f"Printer {n} jams", urgency=3) for n in range(1, 4)]
    for incident in working:
        incident_assign(incident_id=incident.id, actor=bob, assignee=bob)

    agent = login(new_page(), live_server, "bob")
    agent.keyboard.press("g")
    agent.keyboard.press("m")
    expect(agent).to_have_url(f"{live_server.url}/agent/queue/mine/")
    expect(agent.get_by_test_id("incident-row")).to_have_count(3)

    # Bulk: two of my incidents on hold in one go; the bar shows only the fields the action needs.
    for incident in working[:2]:
        agent.locator(f'[data-number="{incident.number}"]').get_by_test_id("row-check").check()
    bulk = agent.get_by_test_id("bulk-form")
    expect(bulk).to_contain_text("2 selected")
    bulk.get_by_label("Bulk action").select_option("hold")
    expect(bulk.get_by_label("Hold reason")).to_be_visible()
    expect(bulk.get_by_label("Resolution code")).to_be_hidden()
    bulk.get_by_label("Hold reason").select_option("awaiting_vendor")
    bulk.get_by_label("Reason", exact=True).fill("Toner on order")
    screenshot(agent, "33-workspace-bulk-hold")
    bulk.get_by_test_id("bulk-apply").click()
    expect(agent.get_by_test_id("messages")).to_contain_text("2 updated (put on hold).")
    expect(agent).to_have_url(f"{live_server.url}/agent/queue/mine/")
    assert sorted(Incident.objects.filter(status="on_hold").values_list("number", flat=True)) == sorted(
        i.number for i in working[:2])
    expect(agent.get_by_test_id("nav-queue-hold").get_by_test_id("nav-count")).to_have_text("2")

    # Sort and filter the full queue, then save it as a view.
    agent.get_by_test_id("nav-queue-all").click()
    agent.get_by_test_id("sort-updated_at").click()
    expect(agent).to_have_url(re.compile(r"sort=-updated_at"))
    expect(agent.get_by_test_id("sort-updated_at").locator("..")).to_have_attribute("aria-sort", "descending")
    agent.get_by_label("Status").select_option("new")  # applies on change
    expect(agent).to_have_url(f"{live_server.url}/agent/queue/all/?sort=-updated_at&status=new")
    expect(agent.locator(".filter-errors")).to_have_count(0)
    expect(agent.get_by_test_id("incident-row")).to_have_count(4)
    agent.get_by_test_id("save-view").locator("summary").click()
    agent.get_by_label("Name of the view").fill("New, latest first")
    agent.get_by_test_id("save-view-form").get_by_role("button", name="Save view").click()
    expect(agent.get_by_test_id("messages")).to_contain_text("Saved the view “New, latest first”.")
    expect(agent.get_by_test_id("queue-title")).to_have_text("New, latest first")
    expect(agent.get_by_test_id("nav-saved-views").get_by_role("link", name="New, latest first")).to_have_attribute(
        "aria-current", "page")
    expect(agent.get_by_test_id("incident-row")).to_have_count(4)
    screenshot(agent, "34-workspace-saved-view")

    # The major queue and the major incident's page.
    agent.get_by_test_id("nav-queue-major").click()
    row = agent.get_by_test_id("incident-row")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("children-count")).to_have_text("3 linked")
    screenshot(agent, "35-workspace-major-queue")
    row.get_by_role("link", name=major.number).click()
    expect(agent.get_by_test_id("major-banner")).to_contain_text("Major incident · 3 linked incidents")
    expect(agent.get_by_test_id("children").locator("li")).to_have_count(3)
    screenshot(agent, "36-workspace-major-incident")

    # The keyboard help.
    agent.keyboard.press("?")
    expect(agent.get_by_test_id("shortcuts-help")).to_be_visible()
    expect(agent.get_by_test_id("shortcuts-help")).to_contain_text("Unassigned queue")
    screenshot(agent, "37-workspace-shortcuts")
    agent.keyboard.press("Escape")
    expect(agent.get_by_test_id("shortcuts-help")).to_be_hidden()

    # A child links back to its parent.
    agent.get_by_test_id("children").get_by_role("link").first.click()
    expect(agent.get_by_test_id("parent-link")).to_contain_text(major.number)
    agent.emulate_media(color_scheme="dark")
    agent.wait_for_timeout(300)  # let the 0.12 s colour transitions finish before the picture
    screenshot(agent, "38-workspace-child-incident-dark")
    agent.keyboard.press("g")
    agent.keyboard.press("d")
    expect(agent).to_have_url(f"{live_server.url}/agent/")


def test_the_workspace_works_without_javascript(new_page, live_server):
    from incidents.models import Incident

    reference_data()
    alice = provision_user("alice", "requester", name="Alice Martin")
    provision_user("bob", "agent", name="Bob Keller")
    incident = create_incident(alice, "Monitor flickers", urgency=3)
    page = login(new_page(javascript=False), live_server, "bob")

    page.get_by_test_id("tile-unassigned").click()
    expect(page).to_have_url(f"{live_server.url}/agent/queue/unassigned/")
    page.get_by_role("link", name=incident.number).click()

    # In-place edit falls back to the same form in a full page.
    page.get_by_test_id("edit-urgency").click()
    expect(page).to_have_url(re.compile(r"\?edit=urgency#fact-urgency$"))
    page.get_by_label("Urgency", exact=True).select_option("2")
    page.get_by_test_id("edit-form-urgency").get_by_test_id("edit-save").click()
    expect(page).to_have_url(f"{live_server.url}/agent/incidents/{incident.number}/")
    expect(page.get_by_test_id("messages")).to_contain_text("Urgency saved. Priority is now P4 (was P5).")

    # A canned response reloads the page with the text in the box.
    page.get_by_test_id("canned-select").select_option(label="Acknowledge")
    page.get_by_role("button", name="Insert").click()
    expect(page.get_by_label("Reply to Alice Martin")).to_have_value(re.compile(f"Thanks for reporting {incident.number}"))

    # A lifecycle panel is a <details>: it opens without JavaScript; a missing reason is named.
    page.get_by_test_id("action-assign_me").get_by_role("button").click()
    expect(page.get_by_test_id("incident-status")).to_have_text("In progress")
    page.get_by_test_id("action-hold").locator("summary").click()
    hold = page.get_by_test_id("action-hold").locator("form")
    hold.get_by_label("Waiting for").select_option("awaiting_caller")
    hold.get_by_label("Note").fill("Asked for the monitor model")
    page.get_by_test_id("confirm-hold").click()
    expect(page.get_by_test_id("messages")).to_contain_text(f"{incident.number} is on hold (awaiting caller).")
    screenshot(page, "39-workspace-no-js-on-hold")
    assert Incident.objects.get(id=incident.id).status == "on_hold"
