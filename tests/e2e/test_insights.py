"""The service insights dashboard in a real browser, on the demo's data (seed_demo: weeks of incidents,
requests, ratings and events, rolled up): every chart is drawn by the vendored Chart.js with nothing on the
console, a chart's numbers are one click away and agree with the headline tile, and the team filter narrows
the page. Screenshots in light and dark."""

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from .conftest import login, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DEMO_PASSWORD = "Demo-2026!"
PAINTED = """
(canvas) => {
  // Read a copy, each once: reading a chart's own canvas twice makes the browser warn on the console.
  const copy = document.createElement("canvas");
  copy.width = canvas.width;
  copy.height = canvas.height;
  const context = copy.getContext("2d");
  context.drawImage(canvas, 0, 0);
  const data = context.getImageData(0, 0, copy.width, copy.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
  return painted;
}
"""


def reference_data():
    """Transactional tests flush every table between tests, so the rows the migrations seed (resolution codes,
    problem detection settings and schedule, the default priority matrix) are gone: seed them again with the
    migrations' own functions before the demo."""
    from importlib import import_module

    from django.apps import apps

    for module, function in (("incidents.migrations.0005_defaults_and_search_index", "defaults"),
                             ("servicedesk.migrations.0002_default_priority_matrix", "forward"),
                             ("problems.migrations.0003_detection", "settings_and_schedule")):
        getattr(import_module(module), function)(apps, None)


@pytest.fixture
def demo():
    reference_data()
    call_command("seed_demo", verbosity=0)


CHARTS = ("backlog", "resolve", "respond", "sla", "rates", "satisfaction", "by-service", "by-source", "categories",
          "workload")


def wait_for_charts(page) -> int:
    """Wait until every canvas on the page says it was drawn; return how many there are."""
    canvases = page.locator("canvas[data-chart]")
    count = canvases.count()
    for i in range(count):
        expect(canvases.nth(i)).to_have_attribute("data-chart-drawn", re.compile(r"^\d+$"))
    return count


def charts_with_data_all_drawn(page) -> tuple[int, int]:
    """(canvases, drawn): a card has a canvas exactly when it has data (else its "-empty" note); count the
    canvases that drew at least one label and painted pixels."""
    canvases = page.locator("canvas[data-chart]")
    empty = sum(page.get_by_test_id(f"ins-{name}-empty").count() for name in CHARTS)
    assert canvases.count() + empty == len(CHARTS), (canvases.count(), empty)
    drawn = 0
    for i in range(canvases.count()):
        canvas = canvases.nth(i)
        if int(canvas.get_attribute("data-chart-drawn") or 0) > 0 and canvas.evaluate(PAINTED) > 0:
            drawn += 1
    return canvases.count(), drawn


def test_a_manager_reads_the_dashboard_with_every_chart_drawn(new_page, live_server, demo, console_problems):
    page = new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    login(page, live_server, "manager", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/agent/")
    page.get_by_role("link", name="Service insights").click()  # (testid nav-insights is also the section's)
    expect(page).to_have_url(f"{live_server.url}/agent/insights/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Service insights")

    wait_for_charts(page)
    canvases, drawn = charts_with_data_all_drawn(page)
    assert drawn == canvases, f"{canvases - drawn} of the {canvases} charts with data drew nothing"
    assert canvases >= 6, f"only {canvases} charts: the demo should fill most of the dashboard"
    backlog_chart = page.get_by_test_id("ins-backlog-chart")
    assert backlog_chart.get_attribute("data-chart-drawn") == "30"  # the last 30 days, a bar pair per day
    assert backlog_chart.evaluate(PAINTED) > 5000  # bars and axes, not a blank canvas
    expect(page.get_by_test_id("ins-freshness")).to_contain_text("Counted as of")
    screenshot(page, "insights-dashboard-manager")

    # The numbers are one click away, and the table's last backlog is the headline tile's.
    numbers = page.get_by_test_id("ins-backlog-numbers")
    expect(numbers.locator("table")).to_be_hidden()
    numbers.get_by_text("The numbers").click()
    last = numbers.locator("tbody tr").last.locator("td").last
    expect(last).to_be_visible()
    expect(page.get_by_test_id("tile-backlog-value")).to_have_text(last.inner_text().strip())
    assert numbers.locator("tbody tr").count() == 30

    page.emulate_media(color_scheme="dark")
    page.reload()
    wait_for_charts(page)
    screenshot(page, "insights-dashboard-manager-dark")
    page.emulate_media(color_scheme="light")
    assert not errors, errors


def test_an_admin_narrows_the_dashboard_to_a_team(new_page, live_server, demo):
    page = new_page()
    login(page, live_server, "admin", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/agent/insights/")
    wait_for_charts(page)
    everyone = int(page.get_by_test_id("tile-opened-value").inner_text().replace(",", ""))
    team = page.get_by_test_id("ins-team")
    expect(team.locator("option").first).to_have_text("All teams")
    team.select_option(label="Network")  # submits the filters on change
    expect(page).to_have_url(re.compile(r"team=\d+"))
    expect(page.get_by_test_id("ins-scope")).to_contain_text("Network")
    wait_for_charts(page)
    network = int(page.get_by_test_id("tile-opened-value").inner_text().replace(",", ""))
    assert network < everyone
    page.get_by_test_id("ins-quick-7").click()
    expect(page.get_by_test_id("ins-quick-7")).to_have_attribute("aria-current", "true")
    expect(page.get_by_test_id("ins-team")).to_have_value(re.compile(r"\d+"))  # the team is kept
    if page.get_by_test_id("ins-backlog-chart").count():
        expect(page.get_by_test_id("ins-backlog-chart")).to_have_attribute("data-chart-drawn", "7")
    screenshot(page, "insights-dashboard-admin-network-7-days")


def test_a_bad_date_is_named_in_the_browser(new_page, live_server, demo, console_problems):
    page = new_page()
    login(page, live_server, "admin", DEMO_PASSWORD)
    response = page.goto(f"{live_server.url}/agent/insights/?from=2026-13-45")
    assert response.status == 400
    expect(page.get_by_test_id("ins-errors")).to_contain_text("from")
    expect(page.locator("#ins-from")).to_have_attribute("aria-invalid", "true")
    console_problems.clear()  # the browser notes the 400 on the console
