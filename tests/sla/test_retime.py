"""A saved policy or calendar reaches the open tickets: their clocks are re-timed as the preview showed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Incident
from servicedesk.models import OutboxMessage
from servicedesk.outbox import outbox_process
from sla.clock import deadline
from sla.clocks import clock_calendar
from sla.models import ClockKind, SlaClock, SlaPolicy, SlaTarget
from sla.retime import clocks_retime
from sla.whatif import PolicyDraft, policy_whatif
from tests.admin_forms import changeform_data
from tests.sla.london import LONDON


@pytest.fixture
def policy(office):
    SlaPolicy.objects.update(active=False)
    policy = SlaPolicy.objects.create(name="Office 4h", order=1, calendar=office)
    SlaTarget.objects.bulk_create([
        SlaTarget(policy=policy, priority=p, first_response_minutes=60, resolution_minutes=240) for p in range(1, 6)
    ])
    return policy


def resolution(incident) -> SlaClock:
    return SlaClock.objects.get(ticket_id=incident.id, kind=ClockKind.RESOLUTION)


def run_retimes() -> int:
    ran = 0
    while True:
        pending = list(OutboxMessage.objects.filter(handler="sla.retime", state="pending").order_by("id"))
        if not pending:
            return ran
        for message in pending:
            assert outbox_process(message.id) == "done"
            ran += 1


def test_saving_a_policy_retimes_its_open_tickets_as_previewed(admin_client, policy, incident_factory):
    # Opened now, whatever day the suite runs: the deadlines are the calendar engine's (sla.clock, tested on
    # its own) for 4 h and then 8 h of the office's business time from the opening.
    opened = timezone.now() - timedelta(minutes=1)
    office = clock_calendar(policy.calendar)
    incident = incident_factory(now=opened)
    assert resolution(incident).due_at == deadline(opened, 4 * 3600, office)
    url = f"/admin/sla/slapolicy/{policy.id}/change/"
    data = changeform_data(admin_client.get(url))
    row = next(k.split("-")[1] for k, v in data.items() if k.endswith("-priority") and k.startswith("targets-")
               and v == str(incident.priority))
    data[f"targets-{row}-resolution_minutes"] = "480"
    preview = admin_client.post(url, {**data, "_preview": "Preview changes"}).context["whatif"]
    previewed = next(r.new_due for r in preview.rows if r.clock.ticket_id == incident.id
                     and r.clock.kind == ClockKind.RESOLUTION)

    assert admin_client.post(url, {**data, "_save": "Save"}).status_code == 302
    assert resolution(incident).due_at == deadline(opened, 4 * 3600, office)  # not before the save commits and runs
    assert run_retimes() == 1
    clock = resolution(incident)
    assert clock.due_at == previewed == deadline(opened, 8 * 3600, office)
    assert clock.target_seconds == 8 * 3600
    assert "target 4 h → 8 h" in clock.segments[-1]["reason"]
    assert Incident.objects.get(id=incident.id).sla_due_at == SlaClock.objects.get(
        ticket_id=incident.id, kind=ClockKind.FIRST_RESPONSE).due_at


def test_saving_a_calendar_with_a_holiday_moves_the_deadline(admin_client, policy, office, incident_factory):
    # Three business days to resolve, so the deadline falls days after today; a holiday on the deadline's
    # day moves it by that day.
    SlaTarget.objects.filter(policy=policy).update(resolution_minutes=3 * 8 * 60)
    opened = timezone.now() - timedelta(minutes=1)
    incident = incident_factory(now=opened)
    before = resolution(incident).due_at
    assert before == deadline(opened, 24 * 3600, clock_calendar(office))
    holiday = before.astimezone(LONDON).date()
    url = f"/admin/sla/businesscalendar/{office.id}/change/"
    data = changeform_data(admin_client.get(url))
    data.update({"holidays-0-date": holiday.isoformat(), "holidays-0-name": "A day off"})
    assert admin_client.post(url, {**data, "_save": "Save"}).status_code == 302
    run_retimes()
    after = resolution(incident).due_at
    assert after == deadline(opened, 24 * 3600, clock_calendar(office).with_holidays([holiday]))
    assert after.astimezone(LONDON).date() > holiday


def test_retime_walks_in_batches_and_a_policy_that_stops_covering_cancels(policy, incident_factory, agent):
    incidents = [incident_factory(now=timezone.now()) for _ in range(3)]
    draft_target = SlaTarget.objects.get(policy=policy, priority=incidents[0].priority)
    draft_target.delete()  # saved without this priority's target
    done, cursor = clocks_retime(policy_id=policy.id, reason="Policy changed", batch=2)
    assert done == 1 and cursor is not None  # two clocks of the first ticket
    done, cursor = clocks_retime(policy_id=policy.id, reason="Policy changed", after=cursor, batch=2)
    assert done == 1
    clocks_retime(policy_id=policy.id, reason="Policy changed", after=cursor, batch=100)
    assert set(SlaClock.objects.filter(ticket_id__in=[i.id for i in incidents]).values_list("state", flat=True)) \
        == {"cancelled"}
    assert not policy_whatif(policy.id, PolicyDraft(calendar=None, targets={}, warning_percent=75)).rows
