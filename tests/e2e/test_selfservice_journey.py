"""The whole self-service journey of issue 8 in a real browser, as its acceptance test reads: an end user
searches the portal, reads an article, orders an item that needs approval; the approver (her manager) approves
from the inbox; the automated handler fulfils it (group access: she joins the group); she sees it fulfilled
and rates it. Celery tasks run eagerly in the live server (tests/e2e/conftest.py); the same handler under a
real worker is tested in tests/requests_app/test_fulfilment_worker.py. Fails on any console message or CSP
violation."""

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _setup():
    from knowledge.services import article_create, article_publish
    from requests_app.models import ApprovalLevel
    from servicedesk.models import Profile
    from tests.requests_app.factories import item

    rita = provision_user("rita", "requester", name="Rita Quester")
    maya = provision_user("maya", "requester", name="Maya Manager")
    Profile.objects.filter(user=rita).update(manager=maya)
    agnes = provision_user("agnes", "agent", name="Agnes Agent")
    article = article_create(title="Working from home with the VPN", author=agnes, audience="public",
                             body="Ask for **VPN access** in the catalog, then sign in to the VPN client.")
    article_publish(article_id=article.id, actor=agnes)
    Group.objects.create(name="VPN users")
    vpn = item("VPN access", description="Reach the office network from home", handler="group_access",
               handler_settings={"group": "VPN users"}, delivery_amount=1, delivery_unit="business_days",
               fields=[{"name": "reason", "label": "Why do you need it", "type": "text", "required": True}])
    ApprovalLevel.objects.create(item=vpn, order=1, kind="manager", mode="any")
    return rita, vpn


def test_search_read_order_approve_fulfil_automatically_and_rate(new_page, live_server):
    from requests_app.models import ServiceRequest

    rita_user, vpn = _setup()

    rita = new_page()
    login(rita, live_server, "rita")
    rita.goto(f"{live_server.url}/portal/")
    rita.get_by_label("Search articles and catalog items").press_sequentially("vpn", delay=40)
    results = rita.get_by_test_id("portal-search-results")
    expect(results.get_by_role("link", name="VPN access")).to_be_visible()
    results.get_by_role("link", name="Working from home with the VPN").click()
    expect(rita.locator("article strong")).to_have_text("VPN access")
    screenshot(rita, "journey-1-article")

    rita.goto(f"{live_server.url}/portal/catalog/{vpn.id}/")
    expect(rita.get_by_test_id("expected-delivery")).to_contain_text("1 business day")
    rita.get_by_label("Why do you need it").fill("Working from home on Fridays")
    rita.get_by_test_id("order-submit").click()
    ordered = ServiceRequest.objects.get()
    expect(rita).to_have_url(f"{live_server.url}/portal/requests/{ordered.number}/")
    expect(rita.get_by_test_id("request-status")).to_have_text("Pending approval")
    expect(rita.get_by_test_id("approval-chain")).to_contain_text("Maya Manager")
    screenshot(rita, "journey-2-ordered")

    maya = new_page()
    login(maya, live_server, "maya")
    maya.goto(f"{live_server.url}/portal/approvals/")
    row = maya.get_by_test_id("approval-row").filter(has_text=ordered.number)
    expect(row).to_contain_text("Working from home on Fridays")
    row.get_by_label("Comment").fill("Fine for Fridays")
    row.get_by_test_id("approve").click()
    expect(maya.get_by_test_id("messages")).to_contain_text("approved")
    screenshot(maya, "journey-3-approved")

    # Approval started fulfilment; the group_access handler ran (eagerly) and fulfilled the request.
    assert rita_user.groups.filter(name="VPN users").exists()
    rita.reload()
    expect(rita.get_by_test_id("request-status")).to_have_text("Fulfilled")
    timeline = rita.get_by_test_id("request-timeline")
    expect(timeline).to_contain_text("Approved by Maya Manager: Fine for Fridays")
    expect(timeline).to_contain_text("VPN users")
    rita.get_by_test_id("rating-5").check()
    rita.get_by_label("Comment").fill("Done before lunch")
    rita.get_by_test_id("rating-submit").click()
    expect(rita.get_by_test_id("rating-given")).to_contain_text("5 out of 5: Done before lunch")
    screenshot(rita, "journey-4-fulfilled-rated")
    ordered.refresh_from_db()
    assert ordered.status == "fulfilled" and ordered.fulfilled_at is not None
