"""An admin previews a changed SLA target in /admin/ (old and new deadlines of the open incidents side by side,
nothing saved), then saves it."""

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD, SCREENSHOTS, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def shown(instant) -> str:
    """How the preview writes an instant (Django's "D j M Y, H:i" in the current time zone)."""
    from django.utils import timezone

    local = timezone.localtime(instant)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M}"


def test_an_admin_previews_a_shorter_p3_resolution_target_then_saves_it(page, live_server):
    from incidents.services import incident_create
    from servicedesk.models import AuditLog
    from sla import clock as engine
    from sla.clocks import clock_calendar
    from sla.defaults import ensure_defaults
    from sla.models import SlaClock, SlaPolicy, SlaTarget

    ensure_defaults()  # migration sla.0002's rows (a transactional test starts from an emptied database)
    policy = SlaPolicy.objects.get(name="Incidents: office hours")
    provision_user("root", "admin", name="Ada Admin")
    agent = provision_user("agnes", "agent", name="Agnes Agent")
    requester = provision_user("olivia", "requester", name="Olivia Requester")
    incident = incident_create(title="VPN drops every hour", requester=requester, created_by=agent, impact=2,
                               urgency=2)
    assert incident.priority == 3
    clock = SlaClock.objects.get(ticket_type="incident", ticket_id=incident.id, kind="resolution")
    assert clock.policy_id == policy.id and clock.target_seconds == 24 * 3600
    expected_new = engine.add_business_time(clock.running_since, 16 * 3600 - clock.elapsed_seconds,
                                            clock_calendar(clock.calendar))

    page.goto(f"{live_server.url}/admin/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Configuration")).to_be_visible()
    page.get_by_role("link", name="SLA policies").click()
    page.get_by_role("link", name="Incidents: office hours").click()
    expect(page.get_by_role("heading", name="Change SLA policy")).to_be_visible()

    row = next(i for i in range(5) if page.locator(f"#id_targets-{i}-priority").input_value() == "3")
    page.locator(f"#id_targets-{row}-resolution_minutes").fill("960")  # 3 business days -> 2
    page.get_by_role("button", name="Preview changes").click()

    preview = page.locator("#whatif")
    expect(preview).to_be_visible()
    expect(preview).to_contain_text("Nothing is saved yet")
    line = preview.locator("tbody tr").filter(has_text=incident.number).filter(has_text="Resolution")
    expect(line).to_have_count(1)
    expect(line.locator(".whatif-old")).to_have_text(shown(clock.due_at))
    expect(line.locator(".whatif-new")).to_have_text(shown(expected_new))
    expect(line.locator(".whatif-shift")).to_contain_text("earlier")
    expect(line).to_contain_text("VPN drops every hour")
    expect(page.locator(f"#id_targets-{row}-resolution_minutes")).to_have_value("960")  # the posted form, kept
    expect(page.locator(".errornote")).to_have_count(0)
    screenshot(page, "sla-admin-whatif-preview")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    preview.screenshot(path=str(SCREENSHOTS / "sla-admin-whatif-table.png"))
    assert SlaTarget.objects.get(policy=policy, priority=3).resolution_minutes == 24 * 60  # nothing saved yet
    assert not AuditLog.objects.filter(action="slapolicy.changed").exists()

    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    screenshot(page, "sla-admin-whatif-saved")
    assert SlaTarget.objects.get(policy=policy, priority=3).resolution_minutes == 960
    log = AuditLog.objects.get(action="slapolicy.changed", actor__username="root")
    assert "P3: respond 240 min, resolve 960 min" in log.changes["after"]["sla targets"]
