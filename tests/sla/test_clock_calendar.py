"""A stored calendar becomes the clock engine's pure Calendar (runs once sla.clock is merged)."""

from datetime import date, time

import pytest

from sla.models import BusinessCalendar, Holiday, WorkingInterval

pytestmark = pytest.mark.django_db


def test_it_builds_the_clock_calendar_with_intervals_overnight_shifts_and_holidays(django_assert_num_queries):
    clock = pytest.importorskip("sla.clock")
    calendar = BusinessCalendar.objects.create(name="Plant", timezone="Europe/Berlin")
    WorkingInterval.objects.bulk_create([
        WorkingInterval(calendar=calendar, weekday=0, start=time(13), end=time(17)),
        WorkingInterval(calendar=calendar, weekday=0, start=time(8), end=time(12)),
        WorkingInterval(calendar=calendar, weekday=4, start=time(22), end=time(6)),
    ])
    Holiday.objects.create(calendar=calendar, date=date(2026, 12, 25), name="Weihnachten")
    stored = BusinessCalendar.objects.prefetch_related("intervals", "holidays").get(id=calendar.id)

    with django_assert_num_queries(0):
        built = stored.as_clock_calendar()

    assert built == clock.Calendar(
        tz="Europe/Berlin",
        week={0: [(time(8), time(12)), (time(13), time(17))], 1: [], 2: [], 3: [], 4: [(time(22), time(6))], 5: [],
              6: []},
        holidays=frozenset({date(2026, 12, 25)}),
    )


def test_a_24x7_calendar_becomes_the_always_preset():
    clock = pytest.importorskip("sla.clock")
    calendar = BusinessCalendar.objects.create(name="Always", timezone="UTC", is_24x7=True)
    assert calendar.as_clock_calendar() == clock.Calendar.always("UTC")
