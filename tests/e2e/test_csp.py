"""The Content-Security-Policy holds on every kind of page, and the harness notices a violation.

Every browser test fails on any CSP violation or console message (conftest.new_page); these walk the pages
no other browser test opens: the API docs (Swagger UI) and Django admin."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_policy_refuses_an_inline_script_and_the_harness_reports_it(page, live_server, console_problems):
    provision_user("alice", "requester", name="Alice Martin")
    login(page, live_server, "alice")
    expect(page).to_have_url(f"{live_server.url}/portal/")
    assert console_problems == []  # the page itself is clean
    page.evaluate("""() => {
        const s = document.createElement("script");
        s.textContent = "window.injected = true";
        document.body.appendChild(s);
    }""")
    assert page.evaluate("() => window.injected === undefined")
    page.wait_for_timeout(200)  # the violation event is dispatched asynchronously
    assert any(p.startswith("error: CSP violation: script-src-elem blocked inline") for p in console_problems), \
        console_problems
    console_problems.clear()


def test_swagger_ui_works_under_the_policy(page, live_server, console_problems):
    provision_user("bob", "agent", name="Bob Keller")
    login(page, live_server, "bob")
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Servicedesk API")
    expect(page.locator(".opblock-summary-path").filter(has_text="/api/v1/incidents/").first).to_be_visible()
    screenshot(page, "90-api-docs-under-csp")
    assert console_problems == []


def test_django_admin_works_under_the_policy(page, live_server):
    from servicedesk.models import Service

    vpn = Service.objects.create(name="VPN")
    provision_user("root", "admin", name="Ada Admin")
    login(page, live_server, "root")
    page.goto(f"{live_server.url}/admin/")
    expect(page.get_by_role("heading", name="Configuration")).to_be_visible()
    page.goto(f"{live_server.url}/admin/servicedesk/service/{vpn.id}/change/")
    page.get_by_label("Default impact").select_option("1")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    vpn.refresh_from_db()
    assert vpn.default_impact == 1
    screenshot(page, "92-admin-under-csp")
