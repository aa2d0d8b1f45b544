"""Approvals in a real browser: a manager (a requester by role) sees "Waiting for my approval" on the portal
home, opens the inbox, approves with a comment, and the requester's page shows the approval chain and the
request in fulfilment. Also the mailed link's confirmation page at phone width. Fails on any console message
or CSP violation (tests/e2e/conftest.py)."""

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _licence_request():
    from requests_app.models import ApprovalLevel
    from requests_app.services import request_submit
    from servicedesk.models import Profile
    from tests.requests_app.factories import item

    rita = provision_user("rita", "requester", name="Rita Quester")
    maya = provision_user("maya", "requester", name="Maya Manager")
    Profile.objects.filter(user=rita).update(manager=maya)
    licence = item("Software licence", fields=[
        {"name": "product", "label": "Product", "type": "choice", "required": True, "choices": "Visio\nTableau"},
        {"name": "why", "label": "Why do you need it?", "type": "long_text", "required": True},
    ])
    ApprovalLevel.objects.create(item=licence, order=1, kind="manager", mode="any")
    return request_submit(item=licence, answers={"product": "Visio", "why": "Office floor plans"}, requester=rita,
                          created_by=rita)


def test_a_manager_approves_from_the_portal_inbox_and_the_requester_sees_it(new_page, live_server):
    ordered = _licence_request()

    page = new_page()
    login(page, live_server, "maya")
    page.goto(f"{live_server.url}/portal/")
    panel = page.get_by_test_id("approvals-panel")
    expect(panel).to_contain_text(ordered.number)
    screenshot(page, "portal-home-approvals-card")
    panel.get_by_test_id("approvals-open").click()
    expect(page).to_have_url(f"{live_server.url}/portal/approvals/")
    row = page.get_by_test_id("approval-row").filter(has_text=ordered.number)
    expect(row).to_contain_text("Rita Quester")
    expect(row.get_by_test_id("approval-answers")).to_contain_text("Office floor plans")
    screenshot(page, "portal-approvals-inbox")
    row.get_by_label("Comment").fill("Approved for the move")
    row.get_by_test_id("approve").click()
    expect(page.get_by_test_id("messages")).to_contain_text(f"{ordered.number} Software licence: approved.")
    expect(page.get_by_test_id("empty-state")).to_be_visible()

    rita = new_page()
    login(rita, live_server, "rita")
    rita.goto(f"{live_server.url}/portal/requests/{ordered.number}/")
    expect(rita.get_by_test_id("request-status")).to_have_text("In fulfilment")
    chain = rita.get_by_test_id("approval-chain")
    expect(chain.get_by_test_id("chain-approval")).to_have_attribute("data-state", "approved")
    expect(chain).to_contain_text("Approved for the move")
    expect(rita.get_by_test_id("request-timeline")).to_contain_text("Approved by Maya Manager: Approved for the move")
    screenshot(rita, "portal-request-approved-chain")


def test_the_mailed_reject_link_asks_for_confirmation_and_a_reason_at_phone_width(new_page, live_server):
    from requests_app.approvals import link_token
    from requests_app.models import Approval

    ordered = _licence_request()
    approval = Approval.objects.get(request=ordered)
    page = new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/portal/approvals/link/{link_token(approval)}/?decision=reject")
    expect(page.get_by_role("radio", name="Reject")).to_be_checked()
    screenshot(page, "approval-link-phone")
    page.get_by_label("Comment").fill("Use the shared licence")
    page.get_by_test_id("approval-link-submit").click()
    expect(page.get_by_test_id("approval-link-done")).to_have_attribute("data-state", "rejected")
    assert Approval.objects.get(id=approval.id).comment == "Use the shared licence"


def test_an_admin_overrides_from_the_workspace_inbox_at_phone_width(new_page, live_server):
    from requests_app.models import Approval

    ordered = _licence_request()
    provision_user("adam", "admin", name="Adam Admin")
    page = new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, live_server, "adam")
    page.goto(f"{live_server.url}/agent/approvals/")
    row = page.get_by_test_id("approval-row").filter(has_text=ordered.number)
    expect(row.get_by_test_id("override-marker")).to_contain_text("for Maya Manager")
    screenshot(page, "agent-approvals-override-phone")
    row.get_by_test_id("reject").click()  # no comment yet: refused, nothing decided
    expect(page.get_by_test_id("messages")).to_contain_text("say why you reject it")
    row = page.get_by_test_id("approval-row").filter(has_text=ordered.number)
    row.get_by_label("Comment").fill("Budget frozen")
    row.get_by_test_id("reject").click()
    expect(page.get_by_test_id("messages")).to_contain_text(f"{ordered.number} Software licence: rejected.")
    approval = Approval.objects.get(request=ordered)
    assert approval.state == "rejected" and approval.override and approval.decided_by.username == "adam"
