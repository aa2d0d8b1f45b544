"""What if: open tickets' deadlines under an edited, unsaved policy or calendar (sla.whatif), and admin's
"Preview changes" button that shows them and saves nothing."""

from datetime import date, time

import pytest

from incidents.services import incident_assign, incident_transition
from servicedesk.models import AuditLog
from sla import clock as engine
from sla.models import BusinessCalendar, ClockKind, Holiday, SlaClock, SlaPolicy, SlaTarget
from sla.whatif import PolicyDraft, calendar_whatif, draft_calendar, duration_text, policy_whatif
from tests.admin_forms import changeform_data
from tests.sla.london import at

pytestmark = pytest.mark.django_db

HOUR = 3600
OFFICE_WEEK = [(day, time(9), time(17)) for day in range(5)]



@pytest.fixture
def policy(office):
    """The only active incident policy: the London office calendar (Mon-Fri 09-17), 1 h to respond and 4 h to
    resolve any priority."""
    SlaPolicy.objects.update(active=False)
    policy = SlaPolicy.objects.create(name="Office 4h", order=1, calendar=office, warning_percent=50)
    SlaTarget.objects.bulk_create([
        SlaTarget(policy=policy, priority=p, first_response_minutes=60, resolution_minutes=240) for p in range(1, 6)
    ])
    return policy


def office_draft(*, resolution_hours=4, response_hours=1, holidays=(), priorities=range(1, 6), **kwargs):
    targets = {p: {ClockKind.FIRST_RESPONSE: response_hours * HOUR, ClockKind.RESOLUTION: resolution_hours * HOUR}
               for p in priorities}
    calendar = draft_calendar(tz="Europe/London", is_24x7=False, intervals=OFFICE_WEEK, holidays=holidays)
    return PolicyDraft(calendar=calendar, targets=targets, warning_percent=50, **kwargs)


def resolution_row(result, incident):
    [row] = [r for r in result.rows if r.clock.ticket_id == incident.id and r.clock.kind == ClockKind.RESOLUTION]
    return row


# --- the computation -------------------------------------------------------------------------------------


def test_friday_16h_four_hours_is_monday_noon_and_eight_hours_would_be_monday_16h(policy, incident_factory):
    incident = incident_factory(now=at(2026, 11, 27, 16, 0))  # a Friday

    result = policy_whatif(policy.id, office_draft(resolution_hours=8), now=at(2026, 11, 27, 16, 30))

    row = resolution_row(result, incident)
    assert row.old_due == at(2026, 11, 30, 12, 0)  # Monday 12:00, as stored
    assert row.new_due == at(2026, 11, 30, 16, 0)  # 1 h on Friday, 7 on Monday
    assert row.shift_seconds == 4 * HOUR and row.direction == "later" and row.shift_text == "4 h later"
    assert not row.late_after and row.note == ""
    assert row.info.number == incident.number and row.info.title == incident.title
    assert row.ticket_type_label == "Incident" and row.priority_label.startswith(f"P{incident.priority}")
    response = [r for r in result.rows if r.clock.kind == ClockKind.FIRST_RESPONSE][0]
    assert response.direction == "same" and response.shift_text == "No change"  # still 1 h: Friday 17:00
    assert (result.total, result.later, result.earlier, result.lost) == (2, 1, 0, 0)
    assert result.rows[0] is not response  # the largest shift first


def test_a_monday_holiday_on_the_calendar_moves_the_deadline_to_tuesday_noon(policy, office, incident_factory):
    incident = incident_factory(now=at(2026, 11, 27, 16, 0))
    edited = draft_calendar(tz="Europe/London", is_24x7=False, intervals=OFFICE_WEEK, holidays=[date(2026, 11, 30)])

    result = calendar_whatif(office.id, edited, now=at(2026, 11, 27, 16, 30))

    row = resolution_row(result, incident)
    assert (row.old_due, row.new_due) == (at(2026, 11, 30, 12, 0), at(2026, 12, 1, 12, 0))
    assert row.shift_text == "1 d later"
    first = [r for r in result.rows if r.clock.kind == ClockKind.FIRST_RESPONSE][0]
    assert first.new_due == at(2026, 11, 27, 17, 0)  # due on Friday: the Monday off changes nothing


def test_switching_the_calendar_to_24x7_counts_the_elapsed_time_again(policy, office, incident_factory, agent):
    incident = incident_factory(now=at(2026, 11, 27, 16, 0))  # Friday 16:00
    incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    incident_transition(incident_id=incident.id, to="on_hold", hold_reason="awaiting_caller", actor=agent,
                        now=at(2026, 11, 27, 18, 0))  # 1 business hour ran (16-17), 2 on the wall clock
    incident_transition(incident_id=incident.id, to="in_progress", actor=agent, now=at(2026, 11, 30, 10, 0))
    stored = SlaClock.objects.get(ticket_id=incident.id, kind=ClockKind.RESOLUTION)
    assert stored.elapsed_seconds == HOUR and stored.due_at == at(2026, 11, 30, 13, 0)

    always = draft_calendar(tz="Europe/London", is_24x7=True, intervals=OFFICE_WEEK)
    result = calendar_whatif(office.id, always, now=at(2026, 11, 30, 10, 30))

    row = resolution_row(result, incident)
    assert row.new_due == at(2026, 11, 30, 12, 0)  # 2 h counted on Friday, 2 left from Monday 10:00
    assert row.shift_text == "1 h earlier" and not row.late_after


def test_a_paused_clock_shows_the_time_it_would_have_left(policy, incident_factory, agent):
    incident = incident_factory(now=at(2026, 11, 23, 9, 0))  # Monday 09:00
    incident_assign(incident_id=incident.id, actor=agent, assignee=agent)
    incident_transition(incident_id=incident.id, to="on_hold", hold_reason="awaiting_caller", actor=agent,
                        now=at(2026, 11, 23, 10, 0))

    result = policy_whatif(policy.id, office_draft(resolution_hours=8), now=at(2026, 11, 23, 11, 0))

    row = resolution_row(result, incident)
    assert row.paused and row.old_due is None and row.new_due is None
    assert (row.old_remaining, row.new_remaining) == (3 * HOUR, 7 * HOUR)
    assert (row.old_remaining_text, row.new_remaining_text) == ("3 h left", "7 h left")
    assert row.shift_text == "4 h more time"

    shorter = resolution_row(policy_whatif(policy.id, office_draft(resolution_hours=1, response_hours=1),
                                           now=at(2026, 11, 23, 11, 0)), incident)
    assert shorter.new_remaining == 0 and shorter.late_after and shorter.becomes_late
    assert shorter.note == "Breached at once." and shorter.new_remaining_text == "none left"


def test_a_shorter_target_that_has_already_passed_breaches_at_once(policy, incident_factory):
    incident = incident_factory(now=at(2026, 11, 23, 9, 0))

    result = policy_whatif(policy.id, office_draft(resolution_hours=2), now=at(2026, 11, 23, 12, 0))

    row = resolution_row(result, incident)
    assert row.new_due == at(2026, 11, 23, 11, 0) and row.becomes_late and row.note == "Breached at once."
    assert result.late == 1 and row.late_before is False
    first = [r for r in result.rows if r.clock.kind == ClockKind.FIRST_RESPONSE][0]
    assert first.late_before and first.late_after and first.note == "Already breached."  # due 10:00, now 12:00


def test_a_clock_whose_priority_loses_its_target_would_lose_its_sla(policy, incident_factory):
    incident = incident_factory(now=at(2026, 11, 23, 9, 0))
    others = [p for p in range(1, 6) if p != incident.priority]

    result = policy_whatif(policy.id, office_draft(priorities=others), now=at(2026, 11, 23, 9, 30))

    assert result.lost == 2 and result.total == 2
    row = resolution_row(result, incident)
    assert row.new_due is None and row.direction == "lost" and row.shift_text == "Loses its SLA"
    assert row.note == f"No P{incident.priority} target in the policy: the clock would stop."
    inactive = policy_whatif(policy.id, office_draft(active=False), now=at(2026, 11, 23, 9, 30))
    assert inactive.lost == 2 and "inactive" in inactive.rows[0].note


def test_the_rows_are_capped_with_a_count_of_the_rest_and_ticket_info_read_only_for_those_shown(
        policy, incident_factory, django_assert_max_num_queries):
    incidents = [incident_factory(now=at(2026, 11, 23, 9 + n, 0)) for n in range(3)]
    draft = office_draft(resolution_hours=6)

    with django_assert_max_num_queries(2 + 1):  # clocks, a calendar at most, one ticket's info
        capped = policy_whatif(policy.id, draft, now=at(2026, 11, 23, 12, 0), limit=1)
    assert (capped.total, len(capped.rows), capped.more) == (6, 1, 5)
    with django_assert_max_num_queries(2 + len(incidents)):  # one info per ticket, not per clock
        every = policy_whatif(policy.id, draft, now=at(2026, 11, 23, 12, 0))
    assert len(every.rows) == 6 and every.more == 0
    assert all(row.info is not None for row in every.rows)


def test_an_unchanged_configuration_moves_nothing(policy, office, incident_factory):
    incident_factory(now=at(2026, 11, 27, 16, 0))

    by_policy = policy_whatif(policy.id, office_draft(), now=at(2026, 11, 27, 16, 30))
    by_calendar = calendar_whatif(office.id, office.as_clock_calendar(), now=at(2026, 11, 27, 16, 30))

    assert {r.direction for r in by_policy.rows} == {r.direction for r in by_calendar.rows} == {"same"}
    assert by_policy.changed == by_calendar.changed == 0


def test_durations_read_as_people_say_them():
    assert [duration_text(s) for s in (20, 45 * 60, 5 * HOUR + 1200, 28 * HOUR, 48 * HOUR)] == [
        "under a minute", "45 min", "5 h 20 min", "1 d 4 h", "2 d"]
    assert duration_text(28 * HOUR, days=False) == "28 h"


def test_a_calendar_without_hours_cannot_be_counted_on():
    with pytest.raises(ValueError, match="no working hours"):
        draft_calendar(tz="UTC", is_24x7=False, intervals=[])
    assert draft_calendar(tz="UTC", is_24x7=True) == engine.Calendar.always("UTC")


# --- admin ------------------------------------------------------------------------------------------------


def policy_url(policy):
    return f"/admin/sla/slapolicy/{policy.id}/change/"


def target_row(data, priority) -> int:
    return next(int(k.split("-")[1]) for k, v in data.items()
                if k.startswith("targets-") and k.endswith("-priority") and v == str(priority))


def test_preview_shows_old_and_new_deadlines_and_saves_nothing(admin_client, policy, incident_factory):
    incident = incident_factory(now=at(2026, 11, 27, 16, 0))
    url = policy_url(policy)
    data = changeform_data(admin_client.get(url))
    data[f"targets-{target_row(data, incident.priority)}-resolution_minutes"] = "480"
    data["warning_percent"] = "80"
    audited = AuditLog.objects.count()

    response = admin_client.post(url, {**data, "_preview": "Preview changes"})

    assert response.status_code == 200
    result = response.context["whatif"]
    assert resolution_row(result, incident).new_due == at(2026, 11, 30, 16, 0)
    page = response.content.decode()
    assert "Nothing is saved yet" in page and incident.number in page
    assert "Mon 30 Nov 2026, 12:00" in page and "Mon 30 Nov 2026, 16:00" in page and "4 h later" in page
    assert 'name="_preview"' in page and "css/sla-admin.css" in page
    assert response.context["adminform"].form["warning_percent"].value() == "80"  # the posted data, kept
    assert "Please correct" not in page
    # Nothing saved: the policy, its targets, no audit row.
    policy.refresh_from_db()
    assert policy.warning_percent == 50
    assert SlaTarget.objects.get(policy=policy, priority=incident.priority).resolution_minutes == 240
    assert not AuditLog.objects.filter(action="slapolicy.changed").exists()
    assert AuditLog.objects.count() == audited

    saved = admin_client.post(url, {**data, "_save": "Save"})  # the admin then saves the same form
    assert saved.status_code == 302
    assert SlaTarget.objects.get(policy=policy, priority=incident.priority).resolution_minutes == 480
    assert AuditLog.objects.filter(action="slapolicy.changed").count() == 1


def test_preview_shows_validation_errors_the_normal_way_and_no_table(admin_client, policy, incident_factory):
    incident_factory(now=at(2026, 11, 27, 16, 0))
    url = policy_url(policy)
    data = changeform_data(admin_client.get(url))
    data["targets-0-resolution_minutes"] = "30"  # under the 60 min first response
    data["warning_percent"] = "120"

    response = admin_client.post(url, {**data, "_preview": "Preview changes"})

    assert response.status_code == 200
    assert "whatif" not in response.context
    assert response.context["adminform"].form.errors == {
        "warning_percent": ["Ensure this value is less than or equal to 99."]}
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.forms[0].errors == {"resolution_minutes": ["Must be at least the first response target (60 min)."]}
    page = response.content.decode()
    assert "Please correct the errors below." in page and "Nothing is saved yet" not in page
    assert SlaTarget.objects.get(policy=policy, priority=1).resolution_minutes == 240


def test_preview_of_a_deleted_target_says_the_clocks_would_lose_their_sla(admin_client, policy, incident_factory):
    incident = incident_factory(now=at(2026, 11, 27, 16, 0))
    url = policy_url(policy)
    data = changeform_data(admin_client.get(url))
    data[f"targets-{target_row(data, incident.priority)}-DELETE"] = "on"

    response = admin_client.post(url, {**data, "_preview": "Preview changes"})

    assert response.context["whatif"].lost == 2
    assert f"No P{incident.priority} target in the policy: the clock would stop." in response.content.decode()
    assert SlaTarget.objects.filter(policy=policy, priority=incident.priority).exists()


def test_calendar_preview_with_a_new_holiday_saves_no_holiday(admin_client, policy, office, incident_factory):
    incident = incident_factory(now=at(2026, 11, 27, 16, 0))
    url = f"/admin/sla/businesscalendar/{office.id}/change/"
    data = changeform_data(admin_client.get(url))
    data.update({"holidays-0-date": "2026-11-30", "holidays-0-name": "A Monday off"})
    revision, audited = office.revision, AuditLog.objects.count()

    response = admin_client.post(url, {**data, "_preview": "Preview changes"})

    assert response.status_code == 200
    assert resolution_row(response.context["whatif"], incident).new_due == at(2026, 12, 1, 12, 0)
    assert "Tue 1 Dec 2026, 12:00" in response.content.decode()
    assert not Holiday.objects.filter(calendar=office).exists()
    assert BusinessCalendar.objects.get(id=office.id).revision == revision
    assert AuditLog.objects.count() == audited


def test_a_calendar_without_hours_is_refused_on_preview_and_on_save(admin_client, office):
    url = f"/admin/sla/businesscalendar/{office.id}/change/"
    data = changeform_data(admin_client.get(url))
    for i in range(5):
        data[f"intervals-{i}-DELETE"] = "on"

    for button in ({"_preview": "Preview changes"}, {"_save": "Save"}):
        response = admin_client.post(url, {**data, **button})
        assert response.status_code == 200
        assert "whatif" not in response.context
        formset = response.context["inline_admin_formsets"][0].formset
        assert formset.non_form_errors() == ["Give the calendar at least one working interval, or tick 24x7."]
    assert office.intervals.count() == 5
    data["is_24x7"] = "on"  # a 24x7 calendar needs none
    assert admin_client.post(url, {**data, "_save": "Save"}).status_code == 302
    assert office.intervals.count() == 0


def test_the_add_form_and_other_sla_admins_have_no_preview_button(admin_client):
    assert 'name="_preview"' not in admin_client.get("/admin/sla/slapolicy/add/").content.decode()
    assert 'name="_preview"' not in admin_client.get("/admin/sla/olatarget/add/").content.decode()
