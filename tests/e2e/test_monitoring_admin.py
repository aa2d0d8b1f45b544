"""An admin adds an event source in /admin/, copies its token from the one page that shows it (a reload shows
it no more), then rotates it: the old token stops working, the new one works."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TOKEN = re.compile(r"^sdev_[A-Za-z0-9_-]{43}$")


def test_an_admin_creates_a_source_sees_its_token_once_and_rotates_it(page, live_server):
    from monitoring.models import EventSource
    from monitoring.sources import event_source_for_token
    from servicedesk.models import Service

    provision_user("root", "admin", name="Ada Admin")
    Service.objects.create(name="Checkout")
    login(page, live_server, "root")

    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Event sources").click()
    page.get_by_role("link", name=re.compile("Add event source")).click()
    expect(page.locator("#connection")).to_contain_text(f"{live_server.url}/api/v1/integrations/alertmanager/")
    page.get_by_label("Name").fill("Prometheus prod")
    page.get_by_label("Kind").select_option("alertmanager")
    page.locator("#id_default_service").locator("xpath=..").locator(".select2-selection").click()
    page.locator(".select2-search__field").fill("check")
    expect(page.locator(".select2-results__option")).to_have_text(["Checkout"])
    page.locator(".select2-results__option").first.click()
    screenshot(page, "monitoring-admin-add-source")
    page.locator("input[name=_save]").click()

    expect(page.get_by_role("heading", name="Event source Prometheus prod created")).to_be_visible()
    token = page.locator("#token-value").input_value()
    assert TOKEN.match(token)
    source = EventSource.objects.get(name="Prometheus prod")
    assert event_source_for_token(token) == source and source.default_service.name == "Checkout"
    snippet = page.locator("#alertmanager-receiver")
    expect(snippet).to_contain_text(f"url: {live_server.url}/api/v1/integrations/alertmanager/")
    expect(snippet).to_contain_text(f"credentials: {token}")
    screenshot(page, "monitoring-admin-token-shown-once")

    page.reload()
    expect(page.locator("#token-gone")).to_contain_text("is not shown again")
    expect(page.locator("#token-value")).to_have_count(0)
    assert token not in page.content()
    expect(page.locator("#alertmanager-receiver")).to_contain_text("credentials: <token>")
    screenshot(page, "monitoring-admin-token-gone-after-reload")

    page.get_by_role("link", name=re.compile("Done: back to")).click()
    expect(page.get_by_role("heading", name="Change event source")).to_be_visible()
    expect(page.locator("div.field-token .readonly")).to_have_text(f"…{token[-4:]}")
    assert token not in page.content()
    page.get_by_role("link", name="Rotate token").click()
    expect(page.get_by_role("heading", name="Rotate the token of Prometheus prod?")).to_be_visible()
    screenshot(page, "monitoring-admin-rotate-confirm")
    assert event_source_for_token(token) == source  # asking changed nothing
    page.get_by_role("button", name="Yes, rotate the token").click()

    expect(page.get_by_role("heading", name="New token for Prometheus prod")).to_be_visible()
    expect(page.locator("#issued-token")).to_contain_text("the previous one no longer works")
    new = page.locator("#token-value").input_value()
    assert TOKEN.match(new) and new != token
    assert event_source_for_token(token) is None
    assert event_source_for_token(new) == source
    screenshot(page, "monitoring-admin-token-rotated")

    page.reload()
    expect(page.locator("#token-value")).to_have_count(0)
    assert new not in page.content()
