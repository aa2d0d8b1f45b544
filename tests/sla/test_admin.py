"""SLA configuration in admin: audited, validated field by field, holidays imported from a form."""

from datetime import date, time

import pytest

from servicedesk.models import AuditLog
from sla.models import BusinessCalendar, SlaPolicy
from tests.admin_forms import changeform_data

pytestmark = pytest.mark.django_db

ADD_CALENDAR = "/admin/sla/businesscalendar/add/"


def calendar_post(admin_client, intervals, name="Support hours"):
    data = changeform_data(admin_client.get(ADD_CALENDAR))
    data.update({"name": name, "timezone": "Europe/London", "intervals-TOTAL_FORMS": str(len(intervals))})
    for i, (day, start, end) in enumerate(intervals):
        data.update({f"intervals-{i}-weekday": str(day), f"intervals-{i}-start": start, f"intervals-{i}-end": end})
    return admin_client.post(ADD_CALENDAR, data)


def test_adding_a_calendar_with_intervals_writes_an_audit_row(admin_client, admin_user):
    response = calendar_post(admin_client, [(0, "08:00", "12:00"), (0, "13:00", "17:00"), (4, "22:00", "06:00")])

    assert response.status_code == 302, response.context["adminform"].form.errors
    calendar = BusinessCalendar.objects.get(name="Support hours")
    assert calendar.intervals.count() == 3
    log = AuditLog.objects.get(action="businesscalendar.added")
    assert log.actor == admin_user and log.object_id == str(calendar.id)
    assert log.changes["after"]["timezone"] == "Europe/London"
    assert log.changes["after"]["working intervals"] == [
        "Friday 22:00-06:00 (overnight)", "Monday 08:00-12:00", "Monday 13:00-17:00"]


def test_admin_refuses_overlapping_intervals_on_the_row_and_saves_nothing(admin_client):
    response = calendar_post(admin_client, [(2, "09:00", "17:00"), (2, "16:00", "18:00")])

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.forms[1].errors == {"start": ["Overlaps Wednesday 09:00-17:00."]}
    assert not BusinessCalendar.objects.filter(name="Support hours").exists()


def test_admin_lets_two_intervals_swap_in_one_save(admin_client, office):
    url = f"/admin/sla/businesscalendar/{office.id}/change/"
    data = changeform_data(admin_client.get(url))
    # Monday becomes 12:00-17:00 while Tuesday takes 09:00-12:00 (rows 0 and 1 are Monday and Tuesday).
    data.update({"intervals-0-start": "12:00", "intervals-1-weekday": "0", "intervals-1-end": "12:00"})

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["inline_admin_formsets"][0].formset.errors
    assert sorted(office.intervals.filter(weekday=0).values_list("start", "end")) == [
        (time(9), time(12)), (time(12), time(17))]
    log = AuditLog.objects.get(action="businesscalendar.changed")
    assert "Monday 09:00-12:00" in log.changes["after"]["working intervals"]


def test_a_policy_target_with_resolution_before_response_is_refused_naming_the_field(admin_client):
    data = changeform_data(admin_client.get("/admin/sla/slapolicy/add/"))
    data.update({"name": "Gold", "order": "5", "ticket_type": "incident", "calendar": str(
        BusinessCalendar.objects.get(name="24x7").id), "warning_percent": "80",
        "pause_statuses": '["on_hold"]', "targets-TOTAL_FORMS": "1", "targets-0-priority": "1",
        "targets-0-first_response_minutes": "60", "targets-0-resolution_minutes": "30"})

    response = admin_client.post("/admin/sla/slapolicy/add/", data)

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.forms[0].errors == {"resolution_minutes": ["Must be at least the first response target (60 min)."]}
    assert not SlaPolicy.objects.filter(name="Gold").exists()


def test_a_policy_change_is_audited_with_before_and_after(admin_client):
    policy = SlaPolicy.objects.get(name="Incidents: office hours")
    url = f"/admin/sla/slapolicy/{policy.id}/change/"
    data = changeform_data(admin_client.get(url))
    data["warning_percent"] = "90"

    response = admin_client.post(url, data)

    assert response.status_code == 302
    log = AuditLog.objects.get(action="slapolicy.changed")
    assert log.changes == {"before": {"warning_percent": 75}, "after": {"warning_percent": 90}}


def test_a_calendar_in_use_is_not_deleted_from_admin(admin_client):
    office = BusinessCalendar.objects.get(name="Office hours")
    url = f"/admin/sla/businesscalendar/{office.id}/delete/"

    page = admin_client.get(url)
    admin_client.post(url, {"post": "yes"})

    assert "Incidents: office hours" in page.content.decode()  # admin lists what still uses it
    assert BusinessCalendar.objects.filter(id=office.id).exists()
    assert not AuditLog.objects.filter(action="businesscalendar.deleted").exists()


def test_the_import_form_adds_holidays_and_names_a_bad_country(admin_client, office):
    change = admin_client.get(f"/admin/sla/businesscalendar/{office.id}/change/").content.decode()
    url = f"/admin/sla/businesscalendar/{office.id}/import-holidays/"
    assert url in change

    bad = admin_client.post(url, {"country": "XX", "subdivision": "", "year_from": "2026", "year_to": "2027"})
    assert bad.status_code == 200
    assert bad.context["form"].errors == {
        "country": ["Unknown country code 'XX': use an ISO 3166 code such as GB, DE or US."]}

    good = admin_client.post(url, {"country": "GB", "subdivision": "ENG", "year_from": "2026", "year_to": "2027"})
    assert good.status_code == 302
    assert office.holidays.filter(date=date(2027, 12, 25), name="Christmas Day").exists()


def test_agents_cannot_open_the_import_form(client, make_user, office):
    client.force_login(make_user("agent"))
    response = client.get(f"/admin/sla/businesscalendar/{office.id}/import-holidays/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_refuses_the_same_holiday_date_twice_in_one_save(admin_client):
    data = changeform_data(admin_client.get(ADD_CALENDAR))
    data.update({"name": "Twice", "timezone": "UTC", "holidays-TOTAL_FORMS": "2",
                 "holidays-0-date": "2026-12-25", "holidays-0-name": "Christmas",
                 "holidays-1-date": "2026-12-25", "holidays-1-name": "Again"})

    response = admin_client.post(ADD_CALENDAR, data)

    assert response.status_code == 200
    formset = next(f.formset for f in response.context["inline_admin_formsets"] if f.formset.prefix == "holidays")
    assert formset.non_form_errors() == ["Please correct the duplicate data for date."]
    assert not BusinessCalendar.objects.filter(name="Twice").exists()
