"""An agent works a service request in a real browser: opens the Requests queue from the sidebar, opens a
request, writes an internal note and a reply, and fulfils it. Fails on any console message or CSP violation
(tests/e2e/conftest.py)."""

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_agent_opens_the_requests_queue_writes_a_note_and_a_reply_and_fulfils_a_request(page, live_server):
    from requests_app.services import request_submit
    from tests.requests_app.factories import item

    rita = provision_user("rita", "requester", name="Rita Quester")
    provision_user("agnes", "agent", name="Agnes Agent")
    laptop = item("New laptop", fields=[
        {"name": "model", "label": "Model", "type": "choice", "required": True, "choices": "13 inch\n15 inch"},
        {"name": "needed_by", "label": "Needed by", "type": "date", "required": True},
    ], delivery_amount=3, delivery_unit="business_days")
    ordered = request_submit(item=laptop, answers={"model": "15 inch", "needed_by": "2026-12-15"}, requester=rita,
                             created_by=rita)

    login(page, live_server, "agnes")
    nav = page.get_by_test_id("nav-requests")
    expect(nav.get_by_test_id("nav-requests-team").get_by_test_id("nav-count")).to_have_text("1")
    nav.get_by_test_id("nav-requests-team").click()
    expect(page.get_by_test_id("queue-title")).to_have_text("Team requests")
    row = page.get_by_test_id("request-row").filter(has_text=ordered.number)
    expect(row).to_contain_text("New laptop")
    expect(row).to_contain_text("Rita Quester")
    expect(row).to_contain_text("In fulfilment")
    screenshot(page, "workspace-requests-queue")

    row.get_by_role("link", name=ordered.number).click()
    expect(page).to_have_url(f"{live_server.url}/agent/requests/{ordered.number}/")
    expect(page.get_by_test_id("request-answers")).to_contain_text("15 inch")
    expect(page.get_by_test_id("request-status")).to_have_text("In fulfilment")

    page.get_by_test_id("action-assign_me").get_by_role("button").click()
    expect(page.get_by_test_id("request-assignee")).to_have_text("Agnes Agent")

    page.get_by_test_id("internal-checkbox").check()
    page.locator("#id_body").fill("Ordered from the usual supplier, ref 4711")
    page.get_by_test_id("reply-submit").click()
    note = page.get_by_test_id("timeline-entry").filter(has_text="ref 4711")
    expect(note).to_have_attribute("data-kind", "note")
    expect(note.get_by_test_id("internal-badge")).to_be_visible()

    page.locator("#id_body").fill("Your laptop arrives on Thursday.")
    page.get_by_test_id("reply-submit").click()
    expect(page.get_by_test_id("timeline-entry").filter(has_text="arrives on Thursday")).to_have_attribute(
        "data-kind", "comment")

    page.get_by_test_id("action-fulfil").locator("summary").click()
    page.get_by_label("What was delivered?").fill("Laptop handed over at the desk")
    page.get_by_test_id("confirm-fulfil").click()
    expect(page.get_by_test_id("request-status")).to_have_text("Fulfilled")
    expect(page.get_by_test_id("timeline")).to_contain_text("Fulfilled: Laptop handed over at the desk")
    expect(page.get_by_test_id("action-close")).to_be_visible()
    screenshot(page, "workspace-request-fulfilled")

    # At phone width the page still reads: no sideways scrolling.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "workspace-request-phone")
