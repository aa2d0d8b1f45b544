"""What people see and do in the browser: sign-in, the portal, the agent workspace, access rules."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD, login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def create_incident(requester, title, **kwargs):
    from incidents.services import incident_create

    kwargs.setdefault("description", f"{title}. It started this morning.")
    kwargs.setdefault("created_by", requester)
    return incident_create(title=title, requester=requester, **kwargs)


def network_service():
    from servicedesk.models import Service, Team

    team, _ = Team.objects.get_or_create(name="Network")
    service, _ = Service.objects.get_or_create(name="VPN", defaults={"owner_team": team})
    return service


def test_it_shows_the_login_page_and_rejects_a_wrong_password(page, live_server):
    provision_user("alice", "requester", name="Alice Martin")

    page.goto(f"{live_server.url}/agent/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/agent/$"))
    expect(page).to_have_title(re.compile("Sign in"))
    expect(page.get_by_role("heading", name="Sign in to Servicedesk")).to_be_visible()
    expect(page.get_by_alt_text("Servicedesk logo")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_focused()
    screenshot(page, "01-login")

    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/login/"))
    error = page.get_by_test_id("login-error")
    expect(error).to_contain_text("Please enter a correct username and password")
    expect(page.get_by_label("Username")).to_have_value("alice")
    expect(page.get_by_label("Password")).to_have_value("")
    assert "not-the-password" not in page.content()
    screenshot(page, "02-login-wrong-password")


def test_each_role_lands_on_its_home_after_login(new_page, live_server):
    alice = provision_user("alice", "requester", name="Alice Martin")
    provision_user("bob", "agent", name="Bob Keller")
    provision_user("maria", "manager", name="Maria Lopez")
    provision_user("root", "admin", name="Ada Admin")
    create_incident(alice, "Printer on the 3rd floor jams on every page", urgency=3)
    create_incident(alice, "Cannot open shared calendar", urgency=2, service=network_service())

    page = login(new_page(), live_server, "alice")
    expect(page).to_have_url(f"{live_server.url}/portal/")
    expect(page.get_by_role("heading", name="Hi Alice, how can we help?")).to_be_visible()
    expect(page.get_by_test_id("ticket-item")).to_have_count(2)
    expect(page.get_by_test_id("ticket-list")).to_contain_text("Cannot open shared calendar")
    expect(page.get_by_test_id("report-button")).to_be_visible()
    expect(page.get_by_test_id("agent-nav")).to_have_count(0)
    expect(page.get_by_test_id("nav-agent")).to_have_count(0)
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    screenshot(page, "03-home-requester")

    for username, role, sees_admin in (
        ("bob", "agent", False),
        ("maria", "manager", True),
        ("root", "admin", True),
    ):
        page = login(new_page(), live_server, username)
        expect(page).to_have_url(f"{live_server.url}/agent/")
        nav = page.get_by_test_id("agent-nav")
        expect(nav.get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")
        expect(nav.get_by_role("link", name="Portal view")).to_have_attribute("href", "/portal/")
        expect(nav.get_by_role("link", name="API docs")).to_have_attribute("href", "/api/docs/")
        expect(nav.get_by_test_id("nav-admin")).to_have_count(1 if sees_admin else 0)
        expect(page.get_by_test_id("user-role")).to_have_text(role)
        expect(page.get_by_test_id("incident-row")).to_have_count(2)
        screenshot(page, f"04-home-{role}")
    page.emulate_media(color_scheme="dark")
    expect(page.locator("body")).not_to_have_css("background-color", "rgb(246, 247, 249)")
    screenshot(page, "04-home-admin-dark")

    # Logging out is a POST form (Django 5) and brings the admin back to the sign-in page.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    page.goto(f"{live_server.url}/agent/")
    expect(page).to_have_url(re.compile(r"/login/\?next="))


def test_a_requester_reports_an_issue_and_an_agent_answers_it(new_page, live_server, mailoutbox):
    provision_user("alice", "requester", name="Alice Martin")
    provision_user("bob", "agent", name="Bob Keller")
    network_service()
    note_text = "Checked the concentrator logs: tunnel renegotiates every 600 s. Suspect MTU."
    reply_text = "Please update the VPN client to 5.2 and tell us if the drops continue."

    # The requester reports the issue from the portal.
    requester = login(new_page(), live_server, "alice")
    requester.get_by_test_id("report-button").click()
    expect(requester).to_have_url(f"{live_server.url}/portal/report/")
    requester.get_by_label("What is wrong?").fill("VPN drops every ten minutes")
    requester.get_by_label("Details").fill("Since Monday the VPN disconnects about every ten minutes.")
    requester.get_by_test_id("urgency-1").check()
    requester.get_by_label("Affected service").select_option(label="VPN")
    screenshot(requester, "05-portal-report-filled")
    requester.get_by_test_id("report-submit").click()

    expect(requester).to_have_url(re.compile(r"/portal/incidents/INC\d+/$"))
    number = requester.get_by_test_id("incident-number").inner_text().strip()
    assert re.fullmatch(r"INC\d{7,}", number), number
    expect(requester.get_by_test_id("messages")).to_contain_text(f"{number} is raised")
    expect(requester.get_by_test_id("incident-title")).to_have_text("VPN drops every ten minutes")
    expect(requester.get_by_test_id("status-plain").first).to_have_text("Received")
    expect(requester.get_by_test_id("conversation")).to_contain_text("Since Monday the VPN disconnects")
    expect(requester.get_by_test_id("key-facts")).to_contain_text("Network")
    expect(requester.get_by_label("Internal note")).to_have_count(0)
    screenshot(requester, "06-portal-incident-new")

    # An agent finds it on the dashboard and opens it.
    agent = login(new_page(), live_server, "bob")
    row = agent.locator(f'[data-testid="incident-row"][data-number="{number}"]')
    expect(row).to_contain_text("VPN drops every ten minutes")
    expect(row).to_contain_text("Alice Martin")
    expect(row).to_contain_text("New")
    expect(row.locator(".prio")).to_have_text("P3")  # impact 3 (portal default) x urgency 1
    screenshot(agent, "07-agent-dashboard-with-new-incident")
    row.get_by_role("link", name=number).click()
    expect(agent).to_have_url(f"{live_server.url}/agent/incidents/{number}/")
    expect(agent.get_by_test_id("incident-title")).to_have_text("VPN drops every ten minutes")
    expect(agent.get_by_test_id("key-facts")).to_contain_text("VPN")
    expect(agent.get_by_test_id("key-facts")).to_contain_text("Portal")
    screenshot(agent, "08-agent-incident")

    # An internal note, then a public reply.
    agent.get_by_label("Reply to Alice Martin").fill(note_text)
    agent.get_by_test_id("internal-checkbox").check()
    agent.get_by_label("Attach a file").set_input_files(
        files=[{"name": "tunnel-trace.txt", "mimeType": "text/plain", "buffer": b"rekey at 600s\n"}]
    )
    screenshot(agent, "09-agent-writing-internal-note")
    agent.get_by_test_id("reply-submit").click()
    expect(agent.get_by_test_id("messages")).to_contain_text("Internal note added.")
    note = agent.locator('[data-testid="timeline-entry"][data-kind="note"]')
    expect(note).to_have_count(1)
    expect(note).to_have_attribute("data-internal", "true")
    expect(note).to_contain_text(note_text)
    expect(note.get_by_test_id("internal-badge")).to_have_text("Internal note")
    note_bg = note.locator(".tl-card").evaluate("el => getComputedStyle(el).backgroundColor")
    assert note_bg not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), note_bg  # visibly not a plain card

    agent.get_by_label("Reply to Alice Martin").fill(reply_text)
    expect(agent.get_by_test_id("internal-checkbox")).not_to_be_checked()
    agent.get_by_label("Attach a file").set_input_files(
        files=[{"name": "vpn-client-5.2-notes.txt", "mimeType": "text/plain", "buffer": b"Upgrade steps\n"}]
    )
    agent.get_by_test_id("reply-submit").click()
    expect(agent.get_by_test_id("messages")).to_contain_text("Reply sent.")
    reply = agent.locator('[data-testid="timeline-entry"][data-kind="comment"]')
    expect(reply).to_have_count(1)
    expect(reply).to_have_attribute("data-internal", "false")
    expect(reply).to_contain_text(reply_text)
    reply_bg = reply.locator(".tl-card").evaluate("el => getComputedStyle(el).backgroundColor")
    assert reply_bg != note_bg
    files = agent.get_by_test_id("attachments")
    expect(files).to_contain_text("tunnel-trace.txt")
    expect(files).to_contain_text("vpn-client-5.2-notes.txt")
    expect(files.locator("li", has_text="tunnel-trace.txt").locator(".tag-internal")).to_have_count(1)
    screenshot(agent, "10-agent-incident-after-note-and-reply")

    # The requester sees the reply, never the note.
    requester.reload()
    conversation = requester.get_by_test_id("conversation")
    expect(conversation).to_contain_text(reply_text)
    expect(conversation.locator(".from-agent")).to_contain_text("Bob Keller")
    assert note_text not in requester.content()
    assert "Internal note" not in requester.content()
    expect(requester.locator('[data-internal="true"]')).to_have_count(0)
    requester_files = requester.get_by_test_id("attachments")
    expect(requester_files).to_contain_text("vpn-client-5.2-notes.txt")
    expect(requester_files).not_to_contain_text("tunnel-trace.txt")
    download = requester_files.get_by_role("link", name="vpn-client-5.2-notes.txt").get_attribute("href")
    assert requester.request.get(f"{live_server.url}{download}").body() == b"Upgrade steps\n"
    screenshot(requester, "11-portal-incident-with-reply")

    # The requester can answer back from the portal.
    requester.get_by_label("Add a reply").fill("Updated the client, I will let you know.")
    requester.get_by_test_id("reply-submit").click()
    expect(requester).to_have_url(f"{live_server.url}/portal/incidents/{number}/")
    expect(requester.get_by_test_id("messages")).to_contain_text("Reply sent.")
    expect(requester.locator(".msg.from-me").last).to_contain_text("Updated the client")
    screenshot(requester, "12-portal-incident-requester-replied")
    requester.emulate_media(color_scheme="dark")
    screenshot(requester, "12-portal-incident-requester-replied-dark")

    # Email: a receipt and the public reply went to the requester; the note went nowhere.
    to_alice = [m for m in mailoutbox if m.to == ["alice@example.com"]]
    # One conversation in her client: every mail to her has the incident's subject.
    assert {m.subject for m in to_alice} == {f"[{number}] VPN drops every ten minutes"}
    assert any("We received your report" in m.body for m in to_alice)
    reply_mail = next(m for m in to_alice if "There is a new reply" in m.body)
    assert reply_text in reply_mail.body
    assert f"/portal/incidents/{number}/" in reply_mail.body
    assert reply_mail.alternatives and reply_text in reply_mail.alternatives[0][0]
    assert all(note_text not in m.body for m in mailoutbox)


def test_a_requester_cannot_open_another_requesters_incident(page, live_server):
    provision_user("alice", "requester", name="Alice Martin")
    carol = provision_user("carol", "requester", name="Carol White")
    secret = create_incident(carol, "Payroll export shows wrong salaries")

    login(page, live_server, "alice")
    response = page.goto(f"{live_server.url}/portal/incidents/{secret.number}/")
    assert response.status == 404
    expect(page.get_by_test_id("error-404")).to_be_visible()
    expect(page.get_by_role("heading", name="We can't find that page")).to_be_visible()
    assert secret.title not in page.content()
    screenshot(page, "13-portal-404-other-requesters-incident")

    response = page.goto(f"{live_server.url}/agent/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="You don't have access to this page")).to_be_visible()
    expect(page.get_by_test_id("error-403")).to_contain_text("alice")
    screenshot(page, "14-agent-403-for-requester")

    response = page.goto(f"{live_server.url}/agent/incidents/{secret.number}/")
    assert response.status == 403
    assert secret.title not in page.content()


def test_the_agent_dashboard_lists_open_incidents_most_urgent_first(page, live_server):
    from incidents.models import Incident

    alice = provision_user("alice", "requester", name="Alice Martin")
    dan = provision_user("dan", "requester", name="Dan Osei")
    bob = provision_user("bob", "agent", name="Bob Keller")
    vpn = network_service()
    specs = [
        (alice, "Email server not accepting connections", 1, 1, None),
        (dan, "Website checkout returns 502 for all customers", 1, 2, vpn),
        (alice, "Laptop battery drains in an hour", 3, 2, None),
        (dan, "VPN drops every ten minutes", 2, 2, vpn),
        (alice, "Request for a second monitor cable", 3, 3, None),
        (dan, "Teams calls have no audio on the new headset", 2, 3, None),
        (alice, "Shared drive is read-only since this morning", 2, 1, vpn),
        (dan, "Printer on the 3rd floor jams on every page", 3, 3, None),
        (alice, "Password reset email never arrives", 2, 2, None),
        (dan, "Wi-Fi in meeting room Atlas keeps disconnecting", 3, 1, vpn),
    ]
    created = [
        create_incident(who, title, impact=impact, urgency=urgency, service=service, created_by=bob)
        for who, title, impact, urgency, service in specs
    ]
    Incident.objects.filter(pk=created[1].pk).update(status="in_progress", assignee=bob, major=True)
    Incident.objects.filter(pk=created[3].pk).update(status="on_hold", hold_reason="awaiting_vendor")
    Incident.objects.filter(pk=created[6].pk).update(status="in_progress", assignee=bob)
    resolved = create_incident(alice, "Keyboard missing a key", urgency=3)
    Incident.objects.filter(pk=resolved.pk).update(status="resolved")

    login(page, live_server, "bob")
    expect(page).to_have_url(f"{live_server.url}/agent/")
    rows = page.get_by_test_id("incident-row")
    expect(rows).to_have_count(10)
    priorities = [
        int(p.lstrip("P")) for p in page.locator('[data-testid="incident-row"] .prio').all_inner_texts()
    ]
    assert priorities == sorted(priorities) and priorities[0] == 1, priorities
    expect(rows.first).to_contain_text("Email server not accepting connections")
    expect(page.get_by_test_id("incident-table")).not_to_contain_text("Keyboard missing a key")
    expect(page.get_by_test_id("tile-open").locator(".value")).to_have_text("10")
    expect(page.get_by_test_id("tile-mine").locator(".value")).to_have_text("2")
    expect(page.get_by_test_id("tile-on-hold").locator(".value")).to_have_text("1")
    expect(page.get_by_test_id("tile-major").locator(".value")).to_have_text("1")
    expect(page.get_by_test_id("tile-critical").locator(".value")).to_have_text(
        str(Incident.objects.filter(priority__lte=2).exclude(status="resolved").count())
    )
    major_row = page.locator(f'[data-testid="incident-row"][data-number="{created[1].number}"]')
    expect(major_row).to_contain_text("Major")
    expect(major_row).to_contain_text("Bob Keller")
    expect(major_row).to_contain_text("Network")
    expect(major_row).to_contain_text("In progress")
    screenshot(page, "15-agent-dashboard-ten-incidents")

    # "/" focuses the top-bar search (JavaScript): global search over every ticket type, a few per type.
    page.keyboard.press("/")
    expect(page.get_by_label("Search tickets")).to_be_focused()
    page.keyboard.type("vpn")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/search/\?q=vpn$"))
    group = page.locator('[data-testid="search-group"][data-kind="incidents"]')
    expect(group.get_by_test_id("search-result")).to_have_count(1)
    expect(group).to_contain_text("VPN drops every ten minutes")
    screenshot(page, "16-global-search-results")

    # The incidents group leads to the incident search with filters and bulk actions; words search titles,
    # descriptions, replies and notes.
    group.get_by_test_id("search-more").click()
    expect(page).to_have_url(re.compile(r"/agent/search/\?q=vpn$"))
    expect(page.get_by_test_id("queue-title")).to_have_text("Results for “vpn”")
    expect(page.get_by_test_id("incident-row")).to_have_count(1)
    expect(page.get_by_test_id("incident-row")).to_contain_text("VPN drops every ten minutes")
    screenshot(page, "16b-agent-incident-search-results")

    # A number jumps straight to the incident.
    page.keyboard.press("/")
    page.keyboard.type(created[0].number)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/agent/incidents/{created[0].number}/")


def test_the_portal_works_without_javascript(new_page, live_server):
    provision_user("alice", "requester", name="Alice Martin")
    page = new_page(javascript=False)
    login(page, live_server, "alice")
    expect(page).to_have_url(f"{live_server.url}/portal/")
    expect(page.get_by_test_id("empty-state")).to_contain_text("No tickets yet")
    screenshot(page, "17-portal-empty-no-js")

    page.get_by_role("link", name="Report an issue").first.click()
    page.get_by_test_id("report-submit").click()  # nothing filled in: the form explains what is missing
    expect(page.locator(".field.has-error")).to_contain_text("This field is required.")
    screenshot(page, "18-portal-report-errors-no-js")

    page.get_by_label("What is wrong?").fill("Monitor flickers")
    page.get_by_test_id("urgency-2").check()
    page.get_by_test_id("report-submit").click()
    expect(page).to_have_url(re.compile(r"/portal/incidents/INC\d+/$"))
    page.get_by_label("Add a reply").fill("It happens with the HDMI cable only.")
    page.get_by_test_id("reply-submit").click()
    expect(page.get_by_test_id("conversation")).to_contain_text("It happens with the HDMI cable only.")
    assert PASSWORD not in page.content()
