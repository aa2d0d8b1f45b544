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
    screenshot(page, "monitoring-admin-source-change")
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


def test_an_admin_adds_a_rule_fixing_what_the_form_names_and_reads_an_event_s_raw_payload(page, live_server):
    from django.utils import timezone

    from monitoring.models import Event, Rule
    from monitoring.sources import event_source_create

    provision_user("root", "admin", name="Ada Admin")
    source, _ = event_source_create(name="Prometheus prod", kind="alertmanager")
    now = timezone.now()
    event = Event.objects.create(source=source, status="firing", severity="critical", summary="Disk full on db-1",
                                 occurred_at=now, fingerprint="fp1", dedup_key="dk1",
                                 raw={"labels": {"alertname": "DiskFull", "instance": "db-1"}, "status": "firing"})
    login(page, live_server, "root")

    page.goto(f"{live_server.url}/admin/monitoring/rule/add/")
    page.get_by_label("Name").fill("Prod databases")
    page.get_by_label("Critical").check()
    page.get_by_label("Major").check()
    page.get_by_label("Labels").fill('{"env": 1}')
    page.get_by_label("Classification").select_option("exception")
    page.get_by_label("Priority").fill("7")
    page.locator("input[name=_save]").click()

    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator(".field-match_labels .errorlist")).to_contain_text("must be a string")
    expect(page.locator(".field-priority .errorlist")).to_contain_text("from 1 (critical) to 5")
    screenshot(page, "monitoring-admin-rule-errors")
    assert not Rule.objects.exists()
    page.get_by_label("Labels").fill('{"env": "prod"}')
    page.get_by_label("Priority").fill("2")
    page.locator("input[name=_save]").click()

    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    expect(page.locator("#result_list")).to_contain_text("severity critical or major; env=prod")
    screenshot(page, "monitoring-admin-rules")
    rule = Rule.objects.get()
    assert (rule.match_severities, rule.match_labels, rule.priority) == (["critical", "major"], {"env": "prod"}, 2)

    page.goto(f"{live_server.url}/admin/monitoring/event/")
    expect(page.locator("#result_list tbody tr")).to_contain_text("Disk full on db-1")
    page.locator("#result_list tbody tr th a").first.click()
    expect(page.locator(".field-raw_payload pre")).to_have_text(
        '{\n  "labels": {\n    "alertname": "DiskFull",\n    "instance": "db-1"\n  },\n  "status": "firing"\n}')
    expect(page.locator("input[name=_save]")).to_have_count(0)
    screenshot(page, "monitoring-admin-event")
    assert page.url.endswith(f"/admin/monitoring/event/{event.id}/change/")
