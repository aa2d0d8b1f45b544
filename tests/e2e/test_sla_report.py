"""The SLA compliance page in a real browser: a manager opens it from the sidebar, the vendored Chart.js draws
the compliance bars (pixels on the canvas, nothing on the console, no CSP violation), the grouping changes,
and a breached ticket's link opens the incident."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# How many pixels of the canvas are painted, and in how many colours (bars, grid, labels).
PAINTED = """
(canvas) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  const colours = new Set();
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0) {
      painted += 1;
      colours.add(data[i] + "," + data[i + 1] + "," + data[i + 2]);
    }
  }
  return {painted: painted, colours: colours.size, width: canvas.width, height: canvas.height};
}
"""


def sla_history():
    """Clocks stopped in the last weeks for three teams (Network 3 of 4 first responses met, Desk all, Apps
    half), one of them breached on a real incident."""
    from django.utils import timezone

    from incidents.services import incident_create
    from servicedesk.models import Team
    from sla.models import BusinessCalendar, SlaClock

    requester = provision_user("rita", "requester", name="Rita Requester")
    incident = incident_create(title="Payroll export fails", requester=requester, created_by=requester)
    calendar = BusinessCalendar.objects.create(name="Always", is_24x7=True)
    now = timezone.now()
    rows = []
    ticket = iter(range(90_000, 91_000))
    plan = {"Network": [True, True, True, False], "Desk": [True, True], "Apps": [True, False]}
    for name, outcomes in plan.items():
        team = Team.objects.get_or_create(name=name)[0]
        for i, met in enumerate(outcomes):
            for kind, elapsed in (("first_response", 900 + 600 * i), ("resolution", 7200 + 3600 * i)):
                stopped = now - timedelta(days=3 + i, hours=2)
                started = stopped - timedelta(seconds=elapsed)
                rows.append(SlaClock(
                    ticket_type="incident", ticket_id=incident.id if (name, i, kind) == ("Network", 3, "resolution")
                    else next(ticket), kind=kind, state="met" if met else "breached", team=team, calendar=calendar,
                    priority=1 + i, policy_name="Standard", target_seconds=elapsed + (600 if met else -600),
                    started_at=started, elapsed_seconds=elapsed, stopped_at=stopped,
                    breached_at=None if met else stopped, segments=[{
                        "state": "running", "from": started.isoformat(), "to": stopped.isoformat(),
                        "seconds": elapsed, "reason": "Incident raised", "ended_by": "Resolved"}],
                ))
    SlaClock.objects.bulk_create(rows)
    return incident


def test_a_manager_reads_sla_compliance_with_a_drawn_chart(new_page, live_server):
    incident = sla_history()
    provision_user("maria", "manager", name="Maria Manager")
    page = new_page()
    login(page, live_server, "maria")
    page.goto(f"{live_server.url}/agent/")
    page.get_by_test_id("nav-sla-report").click()
    expect(page).to_have_url(f"{live_server.url}/agent/sla/report/")

    canvas = page.get_by_test_id("sla-chart")
    expect(canvas).to_have_attribute("data-chart-drawn", "3")
    drawn = canvas.evaluate(PAINTED)
    assert drawn["width"] > 300 and drawn["height"] > 150, drawn
    assert drawn["painted"] > 5000 and drawn["colours"] > 10, drawn  # bars, axes and labels, not a blank canvas

    rows = page.get_by_test_id("report-row")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Apps")
    expect(rows.nth(0)).to_contain_text("50.0 %")
    expect(rows.nth(1)).to_contain_text("Desk")
    expect(rows.nth(2)).to_contain_text("75.0 %")
    expect(page.get_by_test_id("report-totals")).to_contain_text("75.0 %")  # 6 of 8 first responses
    expect(page.get_by_test_id("breached-row")).to_have_count(4)
    due = page.get_by_test_id("breached-row").filter(has_text=incident.number).locator("td").nth(5)
    expect(due.locator("time")).to_have_count(1)  # worked out from the clock's running segments
    screenshot(page, "sla-report-by-team")

    page.get_by_test_id("report-group-by").select_option("priority")
    page.get_by_test_id("report-apply").click()
    expect(page.get_by_test_id("report-row")).to_have_count(4)
    expect(page.get_by_test_id("report-row").first).to_contain_text("P1")
    expect(page.get_by_test_id("sla-chart")).to_have_attribute("data-chart-drawn", "4")
    assert page.get_by_test_id("sla-chart").evaluate(PAINTED)["painted"] > 5000
    screenshot(page, "sla-report-by-priority")

    page.get_by_role("link", name=incident.number).click()
    expect(page).to_have_url(f"{live_server.url}/agent/incidents/{incident.number}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Payroll export fails")


def test_an_agent_has_no_reports_link_and_gets_403(new_page, live_server, console_problems):
    provision_user("bob", "agent", name="Bob Keller")
    page = new_page()
    login(page, live_server, "bob")
    page.goto(f"{live_server.url}/agent/")
    expect(page.get_by_test_id("nav-sla-report")).to_have_count(0)
    response = page.goto(f"{live_server.url}/agent/sla/report/")
    assert response.status == 403
