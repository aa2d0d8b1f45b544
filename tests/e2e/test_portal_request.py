"""A requester's service request in a real browser: My tickets links to its page, which shows the answers and
history, and cancelling it works. Fails on any console message or CSP violation (tests/e2e/conftest.py)."""

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_requester_opens_a_request_from_my_tickets_and_cancels_it(page, live_server):
    from requests_app.services import request_submit
    from tests.requests_app.factories import item

    rita = provision_user("rita", "requester", name="Rita Quester")
    laptop = item("New laptop", fields=[
        {"name": "model", "label": "Model", "type": "choice", "required": True, "choices": "13 inch\n15 inch"},
        {"name": "needed_by", "label": "Needed by", "type": "date", "required": True},
    ])
    ordered = request_submit(item=laptop, answers={"model": "15 inch", "needed_by": "2026-12-15"}, requester=rita,
                             created_by=rita)

    login(page, live_server, "rita")
    page.goto(f"{live_server.url}/portal/")
    page.get_by_role("link", name=ordered.number).first.click()
    expect(page).to_have_url(f"{live_server.url}/portal/requests/{ordered.number}/")
    answers = page.get_by_test_id("request-answers")
    expect(answers).to_contain_text("15 inch")
    expect(answers).to_contain_text("2026-12-15")
    expect(page.get_by_test_id("request-status")).to_have_text("In fulfilment")
    screenshot(page, "portal-request")

    page.get_by_label("Why (optional)").fill("Found a spare one")
    page.get_by_test_id("request-cancel").click()
    expect(page.get_by_test_id("request-status")).to_have_text("Cancelled")
    expect(page.get_by_test_id("request-timeline")).to_contain_text("Cancelled: Found a spare one")
    screenshot(page, "portal-request-cancelled")
