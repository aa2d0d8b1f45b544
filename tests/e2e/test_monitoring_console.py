"""The event console in a real browser: an agent sees a firing alert, acknowledges it without a reload, the
table's polling brings in an alert raised while the page is open (and leaves a half-typed link form alone), the
KPI page draws its four charts with nothing on the console, and the incident page shows its Alerts panel and
the resolve warning, refusing until "Resolve anyway" is ticked."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

POLL_WAIT = 20_000  # the table polls every 7 s

PAINTED = """
(canvas) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
  return painted;
}
"""


def _alerts():
    from django.utils import timezone

    from incidents.services import incident_create
    from servicedesk.models import Service
    from tests.monitoring.console_data import make_alert, make_event, make_source

    requester = provision_user("rita", "requester", name="Rita Requester")
    incident = incident_create(title="Checkout is down", requester=requester, created_by=requester)
    source = make_source("Prometheus")
    shop = Service.objects.create(name="Webshop")
    now = timezone.now()
    firing = make_alert(source, "Checkout 5xx above 5%", incident=incident, service=shop, count=12,
                        first_seen=now - timedelta(minutes=25), last_seen=now - timedelta(minutes=1),
                        labels={"alertname": "CheckoutErrors", "severity": "critical"})
    make_alert(source, "Disk 91% on mail1", severity="minor", first_seen=now - timedelta(hours=2), flapping=True)
    for minutes in (25, 20, 5, 1):
        make_event(source, alert=firing, received_at=now - timedelta(minutes=minutes),
                   raw={"labels": {"alertname": "CheckoutErrors"}, "annotations": {"summary": "<b>5xx</b>"}})
    return {"source": source, "incident": incident, "firing": firing}


def test_an_agent_watches_acknowledges_and_sees_new_alerts_arrive(new_page, live_server):
    from monitoring.models import Alert
    from tests.monitoring.console_data import make_alert

    data = _alerts()
    provision_user("bob", "agent", name="Bob Keller")
    page = login(new_page(), live_server, "bob")
    page.get_by_test_id("nav-monitoring-console").click()
    expect(page).to_have_url(f"{live_server.url}/agent/monitoring/")
    rows = page.get_by_test_id("alert-row")
    expect(rows).to_have_count(2)
    expect(rows.first.get_by_test_id("alert-summary")).to_have_text("Checkout 5xx above 5%")
    expect(rows.first.get_by_test_id("alert-incident")).to_have_text(data["incident"].number)
    expect(rows.nth(1).get_by_test_id("alert-flapping")).to_be_visible()
    expect(page.get_by_test_id("console-count")).to_have_text("2")
    screenshot(page, "monitoring-01-console")

    # Acknowledge: the row changes in place, no navigation.
    page.evaluate("window.__stayed = true")
    rows.first.get_by_test_id("alert-acknowledge").click()
    expect(rows.first.get_by_test_id("alert-acknowledged")).to_have_text("Acknowledged by Bob Keller")
    assert page.evaluate("window.__stayed") is True
    assert Alert.objects.get(id=data["firing"].id).acknowledged_by.username == "bob"

    # A new alert raised while the page is open arrives with the next poll.
    make_alert(data["source"], "Payment gateway timeouts", severity="major")
    expect(page.get_by_test_id("console-count")).to_have_text("3", timeout=POLL_WAIT)
    expect(page.get_by_text("Payment gateway timeouts")).to_be_visible()
    assert page.evaluate("window.__stayed") is True
    screenshot(page, "monitoring-02-polled")

    # A half-typed link is not wiped by the polling, and a bad number is refused in the row.
    disk = page.locator("tr", has_text="Disk 91% on mail1")
    disk.get_by_test_id("alert-link").locator("summary").click()
    disk.get_by_test_id("alert-link-input").fill("INC09")
    page.wait_for_timeout(9_000)  # more than one poll interval
    expect(disk.get_by_test_id("alert-link-input")).to_have_value("INC09")
    disk.get_by_test_id("alert-link-input").fill("INC0999999")
    disk.get_by_test_id("alert-link-submit").click()
    expect(page.get_by_test_id("alert-link-error")).to_contain_text("there is no incident INC0999999")
    page.get_by_test_id("alert-link-input").last.fill(data["incident"].number)
    screenshot(page, "monitoring-03-link-refused")
    page.get_by_test_id("alert-link-submit").last.click()
    disk = page.locator("tr", has_text="Disk 91% on mail1")
    expect(disk.get_by_test_id("alert-incident")).to_have_text(data["incident"].number)

    # Filters: severity narrows the table.
    page.get_by_test_id("console-severity").select_option("major")
    expect(page).to_have_url(f"{live_server.url}/agent/monitoring/?state=firing&severity=major")
    expect(page.get_by_test_id("alert-row")).to_have_count(1)

    # On a phone the table scrolls sideways inside its card; the page itself does not.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/agent/monitoring/?state=live")
    expect(page.get_by_test_id("alert-row")).to_have_count(3)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "monitoring-08-console-phone")
    page.set_viewport_size({"width": 1366, "height": 900})

    # The alert's page shows the raw payload, escaped.
    page.goto(f"{live_server.url}/agent/monitoring/alerts/{data['firing'].id}/")
    expect(page.get_by_test_id("alert-event")).to_have_count(4)
    page.get_by_test_id("event-raw").first.locator("summary").click()
    expect(page.locator("pre.raw-json").first).to_contain_text('"summary": "<b>5xx</b>"')
    screenshot(page, "monitoring-04-alert-page")


def test_the_kpi_page_draws_its_charts(new_page, live_server):
    _alerts()
    provision_user("bob", "agent", name="Bob Keller")
    page = login(new_page(), live_server, "bob")
    page.get_by_test_id("nav-monitoring-kpis").click()
    for key in ("events", "open", "noise", "times"):
        canvas = page.get_by_test_id(f"kpi-{key}-chart")
        expect(canvas).to_have_attribute("data-chart-drawn", re.compile(r"^\d+$"))
    page.get_by_test_id("kpi-period-select").select_option("1h")
    expect(page).to_have_url(f"{live_server.url}/agent/monitoring/kpis/?period=1h")
    for key, labels in (("events", "61"), ("open", "5"), ("noise", "3"), ("times", "6")):
        canvas = page.get_by_test_id(f"kpi-{key}-chart")
        expect(canvas).to_have_attribute("data-chart-drawn", labels)
        assert canvas.evaluate(PAINTED) > 2000, key
    expect(page.get_by_test_id("kpi-open-critical")).to_have_text("1")
    page.get_by_test_id("kpi-noise-numbers").locator("summary").click()
    expect(page.get_by_test_id("kpi-noise-events")).to_have_text("4")
    screenshot(page, "monitoring-05-kpis")


def test_the_incident_page_shows_its_alerts_and_the_resolve_warning(new_page, live_server):
    from incidents.models import Incident, ResolutionCode

    ResolutionCode.objects.get_or_create(code="fixed", defaults={"label": "Fixed"})
    data = _alerts()
    provision_user("bob", "agent", name="Bob Keller")
    page = login(new_page(), live_server, "bob")
    page.goto(f"{live_server.url}/agent/incidents/{data['incident'].number}/")
    panel = page.get_by_test_id("incident-alerts")
    expect(panel.get_by_test_id("incident-alert")).to_have_count(1)
    expect(panel).to_contain_text("Checkout 5xx above 5%")
    expect(panel).to_contain_text("1 firing")

    page.get_by_test_id("action-resolve").locator("summary").click()
    warning = page.get_by_test_id("resolve-objections")
    expect(warning).to_contain_text("1 alert of this incident still fires: Checkout 5xx above 5%.")
    page.get_by_label("Resolution code").select_option("fixed")
    page.get_by_label("Resolution notes").fill("Rolled back release 4.2")
    screenshot(page, "monitoring-06-resolve-warning")
    page.get_by_test_id("confirm-resolve").click()
    expect(page.get_by_test_id("messages")).to_contain_text("still fires")
    assert Incident.objects.get(id=data["incident"].id).status != "resolved"

    page.get_by_test_id("resolve-force").check()
    page.get_by_test_id("confirm-resolve").click()
    expect(page.get_by_test_id("incident-status")).to_have_text("Resolved")
    screenshot(page, "monitoring-07-resolved-anyway")

    panel.get_by_role("link", name="Checkout 5xx above 5%").click()
    expect(page.get_by_test_id("alert-title")).to_have_text("Checkout 5xx above 5%")
