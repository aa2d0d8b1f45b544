"""Knowledge tools for agents in a real browser: an agent opens a resolved incident, writes an article from it
(editor filled in, live preview), publishes it, finds it suggested on another incident and sends it to that
requester as a reply. Fails on any console message or CSP violation (tests/e2e/conftest.py)."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_agent_turns_a_resolved_incident_into_an_article_and_sends_it_as_a_reply(page, live_server, settings):
    from incidents import services as incidents
    from incidents.models import ResolutionCode
    from knowledge.models import Article
    from servicedesk.models import Service, Team, TimelineEntry

    # A transactional test starts from an emptied database: the migration's resolution codes may be gone.
    ResolutionCode.objects.get_or_create(code="fixed", defaults={"label": "Fixed", "order": 10})

    settings.SITE_URL = live_server.url  # links sent to requesters use the site's public address
    agent = provision_user("agent", "agent", name="Aaron Agent")
    rita = provision_user("rita", "requester", name="Rita Quester")
    sam = provision_user("sam", "requester", name="Sam Sender")
    vpn = Service.objects.get_or_create(name="VPN")[0]
    fixed = incidents.incident_create(
        title="VPN drops every few minutes at home", requester=rita, created_by=rita, service=vpn,
        description="The VPN client disconnects every few minutes on my home Wi-Fi.")
    fixed = incidents.incident_assign(incident_id=fixed.id, actor=agent, assignee=agent,
                                      assignment_group=Team.objects.get(name="Service Desk"))
    incidents.incident_resolve(
        incident_id=fixed.id, actor=agent, resolution_code="fixed",
        resolution_notes="The home router dropped idle IPsec sessions. Switched the VPN client to TLS mode "
                         "(Settings, Protocol, TLS) and the connection held.")
    other = incidents.incident_create(
        title="VPN keeps disconnecting", requester=sam, created_by=sam, service=vpn,
        description="Since yesterday the VPN disconnects when I work from home.")

    login(page, live_server, "agent")
    page.goto(f"{live_server.url}/agent/incidents/{fixed.number}/")
    write = page.get_by_test_id("kb-write")
    expect(write).to_be_visible()
    write.get_by_test_id("kb-write-from").click()

    # The editor is filled in from the incident; the preview is rendered by the server as the body changes.
    expect(page.get_by_test_id("kb-source")).to_have_text(fixed.number)
    expect(page.get_by_test_id("kb-title")).to_have_value("VPN drops every few minutes at home")
    body = page.get_by_test_id("kb-body")
    expect(body).to_have_value(re.compile(r"^## Problem\n\nThe VPN client disconnects"))
    expect(body).to_have_value(re.compile(r"## Solution\n\nThe home router dropped idle IPsec"))
    expect(page.get_by_test_id("kb-services").get_by_label("VPN")).to_be_checked()
    preview = page.get_by_test_id("kb-preview")
    expect(preview.get_by_role("heading", name="Solution")).to_be_visible()
    page.get_by_test_id("kb-title").fill("VPN disconnects at home: switch the client to TLS")
    body.press("Control+End")
    body.press_sequentially("\nStill dropping? **Restart the router** and <script>alert(1)</script> try again.")
    expect(preview.locator("strong")).to_have_text("Restart the router")
    expect(preview.locator("script")).to_have_count(0)
    screenshot(page, "agent-kb-editor-from-incident")
    page.get_by_test_id("kb-save").click()

    expect(page.get_by_text("saved as a draft")).to_be_visible()
    expect(page.get_by_test_id("kb-status")).to_have_text("Draft")
    page.get_by_test_id("kb-publish").click()
    expect(page.get_by_test_id("kb-status")).to_have_text("Published")
    screenshot(page, "agent-kb-published")
    # Usable at phone width: the editor stacks, nothing scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.get_by_test_id("kb-save")).to_be_visible()
    screenshot(page, "agent-kb-editor-phone")
    page.set_viewport_size({"width": 1366, "height": 900})
    article = Article.objects.get()
    assert (article.status, article.source_ticket) == ("published", fixed.number)
    assert article.versions.get().note == f"Written from {fixed.number}"

    # The list shows it; the history keeps where it came from.
    page.get_by_test_id("nav-kb").click()
    expect(page.get_by_test_id("kb-row")).to_have_count(1)
    expect(page.get_by_test_id("kb-row")).to_contain_text(fixed.number)
    screenshot(page, "agent-kb-list")
    page.get_by_test_id("kb-row").get_by_role("link", name=article.number).click()
    page.get_by_test_id("kb-history-link").click()
    expect(page.get_by_test_id("kb-version-note")).to_have_text(f"Written from {fixed.number}")
    screenshot(page, "agent-kb-history")

    # On another VPN incident it is suggested, and goes to the requester as a reply with its link.
    page.goto(f"{live_server.url}/agent/incidents/{other.number}/")
    suggestion = page.get_by_test_id("kb-suggestion").filter(has_text="switch the client to TLS")
    expect(suggestion).to_be_visible()
    screenshot(page, "agent-kb-suggested")
    suggestion.get_by_test_id("kb-send").click()
    expect(page).to_have_url(f"{live_server.url}/agent/incidents/{other.number}/")
    expect(page.get_by_text(f"Sent {article.number}")).to_be_visible()
    link = f"{live_server.url}/portal/kb/{article.slug}/"
    expect(page.get_by_text(link).first).to_be_visible()
    screenshot(page, "agent-kb-sent-as-reply")
    reply = TimelineEntry.objects.get(object_id=other.id, kind="comment")
    assert not reply.internal and link in reply.body and article.title in reply.body
