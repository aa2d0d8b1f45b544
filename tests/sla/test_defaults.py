"""A fresh install (migrate) has the default calendars and incident policies; seed_demo keeps them."""

from datetime import time

import pytest
from django.core.management import call_command

from sla.defaults import ensure_defaults
from sla.models import BusinessCalendar, SlaPolicy
from sla.selectors import policy_for

pytestmark = pytest.mark.django_db


def test_migrate_created_an_office_hours_and_a_24x7_calendar():
    office = BusinessCalendar.objects.get(name="Office hours")
    assert not office.is_24x7
    assert sorted(office.intervals.values_list("weekday", "start", "end")) == [
        (day, time(9), time(17)) for day in range(5)]
    assert BusinessCalendar.objects.get(name="24x7").is_24x7


@pytest.mark.parametrize(("priority", "calendar", "response", "resolution"), [
    (1, "24x7", 15, 4 * 60),
    (2, "24x7", 30, 8 * 60),
    (3, "Office hours", 4 * 60, 24 * 60),
    (4, "Office hours", 8 * 60, 40 * 60),
    (5, "Office hours", 16 * 60, 80 * 60),
])
def test_every_incident_priority_has_a_default_policy(priority, calendar, response, resolution):
    policy = policy_for("incident", priority, None, None)
    assert policy is not None and policy.calendar.name == calendar
    target = policy.targets.get(priority=priority)
    assert (target.first_response_minutes, target.resolution_minutes) == (response, resolution)
    assert policy.pause_statuses == ["on_hold:awaiting_caller"] and policy.warning_percent == 75


def test_ensuring_the_defaults_again_changes_nothing_and_keeps_an_admins_edit():
    SlaPolicy.objects.filter(name="Incidents: office hours").update(warning_percent=80)
    before = (BusinessCalendar.objects.count(), SlaPolicy.objects.count())

    assert ensure_defaults() == "default calendars and policies present"

    assert (BusinessCalendar.objects.count(), SlaPolicy.objects.count()) == before
    assert SlaPolicy.objects.get(name="Incidents: office hours").warning_percent == 80


def test_seed_demo_recreates_a_deleted_default(capsys):
    SlaPolicy.objects.filter(name="Incidents: critical and high (24x7)").delete()
    call_command("seed_demo", "--quiet-logins")
    assert "sla: created Incidents: critical and high (24x7)" in capsys.readouterr().out
    assert policy_for("incident", 1, None, None).targets.get(priority=1).resolution_minutes == 240
