"""The business-time clock (sla/clock.py): pure, no database.

Hand cases pin the behaviour people check by eye (Friday 16:00 + 4 h = Monday 12:00, holidays, DST,
overnight shifts); hypothesis properties hold it everywhere else, one of them against an independent
slot-by-slot oracle that only asks "is this instant inside working hours?".
"""

import ast
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import sla.clock
from sla.clock import Calendar, add_business_time, business_seconds_between, deadline, is_open, next_opening

H = 3600
# The suite's autouse fixtures (media dir, cache) are per test, harmless to share between examples here.
props = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def at(tz, *args):
    return datetime(*args, tzinfo=ZoneInfo(tz))


def week(*days_intervals):
    """week((0, [(9, 17)]), (2, [(22, 6)])) -> Calendar week with whole-hour intervals on those weekdays."""
    days = [[] for _ in range(7)]
    for day, intervals in days_intervals:
        days[day] = [(time(a), time(b)) for a, b in intervals]
    return days


def every_day(*intervals):
    return week(*[(day, intervals) for day in range(7)])


def test_it_imports_only_the_standard_library():
    tree = ast.parse(Path(sla.clock.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported - set(sys.stdlib_module_names)


# --- hand cases --------------------------------------------------------------------------------------

@pytest.mark.parametrize("tz", ["Europe/London", "UTC"])
def test_it_makes_friday_16h_plus_4_business_hours_monday_noon(tz):
    office = Calendar.office(tz)
    assert add_business_time(at(tz, 2026, 3, 6, 16), 4 * H, office) == at(tz, 2026, 3, 9, 12)


def test_it_moves_the_deadline_to_tuesday_noon_when_that_monday_is_a_holiday():
    office = Calendar.office("Europe/London", holidays=[date(2026, 3, 9)])
    due = add_business_time(at("Europe/London", 2026, 3, 6, 16), 4 * H, office)
    assert due == at("Europe/London", 2026, 3, 10, 12)


def test_it_starts_counting_on_monday_at_9_when_started_on_a_saturday():
    office = Calendar.office("Europe/London")
    assert add_business_time(at("Europe/London", 2026, 3, 7, 11, 30), 90 * 60, office) == \
        at("Europe/London", 2026, 3, 9, 10, 30)


def test_it_starts_counting_at_the_opening_when_started_before_hours():
    office = Calendar.office("UTC")
    assert add_business_time(at("UTC", 2026, 3, 9, 7), H, office) == at("UTC", 2026, 3, 9, 10)


def test_it_returns_the_start_itself_for_a_zero_target():
    office = Calendar.office("UTC")
    assert add_business_time(at("UTC", 2026, 3, 7, 11), 0, office) == at("UTC", 2026, 3, 7, 11)


def test_it_counts_the_business_seconds_from_friday_16h_to_monday_noon():
    office = Calendar.office("Europe/London")
    assert business_seconds_between(at("Europe/London", 2026, 3, 6, 16), at("Europe/London", 2026, 3, 9, 12),
                                     office) == 4 * H


def test_it_counts_nothing_when_the_end_is_not_after_the_start():
    office = Calendar.office("UTC")
    assert business_seconds_between(at("UTC", 2026, 3, 9, 12), at("UTC", 2026, 3, 9, 10), office) == 0
    assert business_seconds_between(at("UTC", 2026, 3, 9, 12), at("UTC", 2026, 3, 9, 12), office) == 0


def test_it_gives_the_result_in_the_timezone_of_the_start():
    office = Calendar.office("Europe/Berlin")
    due = add_business_time(datetime(2026, 3, 9, 8, tzinfo=UTC), H, office)  # 09:00 Berlin
    assert due.tzinfo is UTC
    assert due == datetime(2026, 3, 9, 9, tzinfo=UTC)


@pytest.mark.parametrize(("tz", "friday", "monday", "wall_clock_hours"), [
    ("Europe/Berlin", date(2026, 3, 27), date(2026, 3, 30), 67),       # spring forward Sunday 29 March
    ("Europe/Berlin", date(2026, 10, 23), date(2026, 10, 26), 69),     # fall back Sunday 25 October
    ("America/New_York", date(2026, 3, 6), date(2026, 3, 9), 67),      # spring forward Sunday 8 March
    ("America/New_York", date(2026, 10, 30), date(2026, 11, 2), 69),   # fall back Sunday 1 November
])
def test_it_keeps_office_hours_in_local_time_across_both_dst_changes(tz, friday, monday, wall_clock_hours):
    office = Calendar.office(tz)
    start = at(tz, friday.year, friday.month, friday.day, 16)
    due = add_business_time(start, 4 * H, office)
    assert due == at(tz, monday.year, monday.month, monday.day, 12)
    assert (due.astimezone(UTC) - start.astimezone(UTC)) == timedelta(hours=wall_clock_hours)
    assert business_seconds_between(start, due, office) == 4 * H


@pytest.mark.parametrize(("tz", "day"), [
    ("Europe/Berlin", date(2026, 3, 29)), ("Europe/Berlin", date(2026, 10, 25)),
    ("America/New_York", date(2026, 3, 8)), ("America/New_York", date(2026, 11, 1)),
])
def test_it_counts_9_to_17_as_8_hours_on_a_dst_change_day(tz, day):
    cal = Calendar(tz, every_day((9, 17)))
    start = at(tz, day.year, day.month, day.day, 0)
    assert business_seconds_between(start, start + timedelta(days=1), cal) == 8 * H
    assert add_business_time(start, 8 * H, cal) == at(tz, day.year, day.month, day.day, 17)


@pytest.mark.parametrize(("tz", "eve", "hours"), [
    ("Europe/Berlin", date(2026, 3, 28), 7), ("Europe/Berlin", date(2026, 10, 24), 9),
    ("America/New_York", date(2026, 3, 7), 7), ("America/New_York", date(2026, 10, 31), 9),
])
def test_it_counts_an_overnight_shift_across_a_dst_change_at_its_real_length(tz, eve, hours):
    night = Calendar(tz, every_day((22, 6)))
    start = at(tz, eve.year, eve.month, eve.day, 12)
    assert business_seconds_between(start, start + timedelta(days=1), night) == hours * H
    morning = eve + timedelta(days=1)
    assert add_business_time(start, hours * H, night) == at(tz, morning.year, morning.month, morning.day, 6)


def test_it_counts_the_short_and_the_long_dst_night_within_a_month_of_night_shifts():
    # 30 nights of 22:00-06:00 hold 239 h when one is the 7 h spring night, 241 h with the 9 h autumn one.
    nights = Calendar("Europe/Berlin", every_day((22, 6)))
    spring = at("Europe/Berlin", 2026, 3, 15, 12)
    assert add_business_time(spring, 240 * H, nights) == at("Europe/Berlin", 2026, 4, 14, 23)
    assert business_seconds_between(spring, at("Europe/Berlin", 2026, 4, 14, 12), nights) == 239 * H
    autumn = at("Europe/Berlin", 2026, 10, 10, 12)
    assert add_business_time(autumn, 240 * H, nights) == at("Europe/Berlin", 2026, 11, 9, 5)
    assert business_seconds_between(autumn, at("Europe/Berlin", 2026, 11, 9, 12), nights) == 241 * H


def test_it_counts_an_interval_holding_the_change_at_its_real_length():
    cal = Calendar("Europe/Berlin", every_day((0, 6)))
    assert business_seconds_between(at("Europe/Berlin", 2026, 3, 29), at("Europe/Berlin", 2026, 3, 29, 12),
                                    cal) == 5 * H
    assert business_seconds_between(at("Europe/Berlin", 2026, 10, 25), at("Europe/Berlin", 2026, 10, 25, 12),
                                    cal) == 7 * H


def test_it_ends_a_shift_whose_end_does_not_exist_when_the_clocks_jump():
    # 22:00-02:30 on the night Berlin jumps from 02:00 to 03:00: the shift ends at the jump, after 4 h.
    cal = Calendar("Europe/Berlin", [[(time(22), time(2, 30))]] * 7)
    eve = at("Europe/Berlin", 2026, 3, 28, 12)
    assert business_seconds_between(eve, eve + timedelta(days=1), cal) == 4 * H
    assert add_business_time(eve, 4 * H, cal) == at("Europe/Berlin", 2026, 3, 29, 3)
    # On the autumn night 02:30 comes twice: the shift ends at the first, after 4.5 h.
    autumn = at("Europe/Berlin", 2026, 10, 24, 12)
    assert business_seconds_between(autumn, autumn + timedelta(days=1), cal) == 4.5 * H


def test_it_counts_an_overnight_shift_into_the_next_morning():
    nights = Calendar("UTC", week(*[(day, [(22, 6)]) for day in range(5)]))  # Mon-Fri nights
    # Friday 23:00: 7 h until Saturday 06:00, no shift starts at the weekend, 3 h from Monday 22:00.
    assert add_business_time(at("UTC", 2026, 3, 6, 23), 10 * H, nights) == at("UTC", 2026, 3, 10, 1)
    assert business_seconds_between(at("UTC", 2026, 3, 7, 3), at("UTC", 2026, 3, 7, 8), nights) == 3 * H


def test_it_runs_the_overnight_shift_that_started_the_evening_before_a_holiday():
    nights = Calendar("UTC", week(*[(day, [(22, 6)]) for day in range(5)]), holidays={date(2026, 3, 10)})
    monday_night = at("UTC", 2026, 3, 9, 22)
    # Monday's shift runs into the holiday (Tuesday) morning; Tuesday evening's shift does not run.
    assert add_business_time(monday_night, 8 * H, nights) == at("UTC", 2026, 3, 10, 6)
    assert add_business_time(monday_night, 9 * H, nights) == at("UTC", 2026, 3, 11, 23)
    assert is_open(at("UTC", 2026, 3, 10, 5), nights)
    assert not is_open(at("UTC", 2026, 3, 10, 23), nights)


def test_it_skips_the_lunch_break_between_two_intervals_a_day():
    split = Calendar("Europe/London", week(*[(day, [(9, 12), (13, 17)]) for day in range(5)]))
    assert add_business_time(at("Europe/London", 2026, 3, 9, 11), 2 * H, split) == at("Europe/London", 2026, 3, 9, 14)
    assert add_business_time(at("Europe/London", 2026, 3, 9, 12, 30), 1800, split) == \
        at("Europe/London", 2026, 3, 9, 13, 30)
    assert business_seconds_between(at("Europe/London", 2026, 3, 9, 8), at("Europe/London", 2026, 3, 9, 18),
                                    split) == 7 * H


def test_it_makes_24x7_business_time_equal_to_wall_clock_time_across_dst():
    always = Calendar.always("Europe/Berlin")
    start = at("Europe/Berlin", 2026, 3, 28, 12)
    assert add_business_time(start, 24 * H, always) == datetime(2026, 3, 29, 11, tzinfo=UTC)
    assert business_seconds_between(at("Europe/Berlin", 2026, 3, 29), at("Europe/Berlin", 2026, 3, 30),
                                    always) == 23 * H
    assert business_seconds_between(at("Europe/Berlin", 2026, 10, 25), at("Europe/Berlin", 2026, 10, 26),
                                    always) == 25 * H


def test_it_reaches_a_one_year_target_on_the_right_friday_with_holidays_and_dst():
    # 52 weeks of 40 h from Monday 5 January 2026 09:00 end on Friday 1 January 2027 17:00 (Berlin time,
    # both DST changes on the way); ten weekday holidays push that two weeks later.
    office = Calendar.office("Europe/Berlin")
    start = at("Europe/Berlin", 2026, 1, 5, 9)
    assert add_business_time(start, 52 * 40 * H, office) == at("Europe/Berlin", 2027, 1, 1, 17)
    holidays = [date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 1), date(2026, 5, 14), date(2026, 5, 25),
                date(2026, 6, 4), date(2026, 10, 26), date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 31)]
    assert add_business_time(start, 52 * 40 * H, office.with_holidays(holidays)) == \
        at("Europe/Berlin", 2027, 1, 15, 17)
    assert business_seconds_between(start, at("Europe/Berlin", 2027, 1, 1, 17), office) == 52 * 40 * H


def test_it_names_the_next_opening():
    office = Calendar.office("UTC")
    assert next_opening(at("UTC", 2026, 3, 7, 11), office) == at("UTC", 2026, 3, 9, 9)
    assert next_opening(at("UTC", 2026, 3, 9, 11), office) == at("UTC", 2026, 3, 9, 11)
    assert not is_open(at("UTC", 2026, 3, 9, 17), office)
    assert is_open(at("UTC", 2026, 3, 9, 9), office)


# --- pauses ------------------------------------------------------------------------------------------

def test_it_moves_the_deadline_by_the_business_time_of_a_pause():
    office = Calendar.office("Europe/London")
    start = at("Europe/London", 2026, 3, 9, 9)
    assert deadline(start, 8 * H, office) == at("Europe/London", 2026, 3, 9, 17)
    pause = (at("Europe/London", 2026, 3, 9, 10), at("Europe/London", 2026, 3, 9, 11))
    assert deadline(start, 8 * H, office, pauses=[pause]) == at("Europe/London", 2026, 3, 10, 10)
    # Paused from Monday 16:00 to Tuesday 10:00 holds 2 business hours.
    overnight = (at("Europe/London", 2026, 3, 9, 16), at("Europe/London", 2026, 3, 10, 10))
    assert deadline(start, 8 * H, office, pauses=[overnight]) == at("Europe/London", 2026, 3, 10, 11)
    assert business_seconds_between(start, at("Europe/London", 2026, 3, 10, 11), office, pauses=[overnight]) \
        == 8 * H


def test_it_ignores_a_pause_that_starts_after_the_deadline():
    office = Calendar.office("UTC")
    start = at("UTC", 2026, 3, 9, 9)
    late = (at("UTC", 2026, 3, 9, 18), at("UTC", 2026, 3, 12, 9))
    assert deadline(start, 4 * H, office, pauses=[late]) == at("UTC", 2026, 3, 9, 13)


def test_it_counts_an_open_pause_until_now():
    office = Calendar.office("UTC")
    start = at("UTC", 2026, 3, 9, 9)
    open_pause = [(at("UTC", 2026, 3, 9, 16), None)]
    now = at("UTC", 2026, 3, 10, 9, 30)
    # 7 h ran on Monday; resuming now, the last hour ends at 10:30.
    assert deadline(start, 8 * H, office, pauses=open_pause, now=now) == at("UTC", 2026, 3, 10, 10, 30)
    assert business_seconds_between(start, now, office, pauses=open_pause) == 7 * H


def test_it_counts_overlapping_pauses_once():
    office = Calendar.office("UTC")
    start, end = at("UTC", 2026, 3, 9, 9), at("UTC", 2026, 3, 9, 17)
    pauses = [(at("UTC", 2026, 3, 9, 10), at("UTC", 2026, 3, 9, 12)),
              (at("UTC", 2026, 3, 9, 11), at("UTC", 2026, 3, 9, 13))]
    assert business_seconds_between(start, end, office, pauses=pauses) == 5 * H


# --- bad input ---------------------------------------------------------------------------------------

def test_it_refuses_overlapping_intervals_naming_the_weekday():
    with pytest.raises(ValueError, match=r"week\[Wednesday\].*09:00-12:00 and 11:00-17:00 overlap"):
        Calendar("UTC", week((2, [(9, 12), (11, 17)])))


def test_it_refuses_an_overnight_shift_running_into_the_next_days_hours():
    with pytest.raises(ValueError, match=r"week\[Sunday\].*22:00-10:00 runs into Monday's 09:00-17:00"):
        Calendar("UTC", week((6, [(22, 10)]), (0, [(9, 17)])))


def test_it_refuses_a_calendar_without_hours_or_with_an_unknown_timezone():
    with pytest.raises(ValueError, match="week"):
        Calendar("UTC", [[]] * 7)
    with pytest.raises(ValueError, match="tz"):
        Calendar.office("Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="days"):
        Calendar.office("UTC", days=[7])
    with pytest.raises(ValueError, match="holidays"):
        Calendar.office("UTC", holidays=["2026-12-25"])


def test_it_refuses_naive_datetimes_and_negative_targets():
    office = Calendar.office("UTC")
    with pytest.raises(ValueError, match="start: naive"):
        add_business_time(datetime(2026, 3, 9, 9), H, office)
    with pytest.raises(ValueError, match="end: naive"):
        business_seconds_between(at("UTC", 2026, 3, 9, 9), datetime(2026, 3, 9, 10), office)
    with pytest.raises(ValueError, match="seconds: -1 is negative"):
        add_business_time(at("UTC", 2026, 3, 9, 9), -1, office)
    with pytest.raises(ValueError, match="seconds"):
        add_business_time(at("UTC", 2026, 3, 9, 9), float("inf"), office)


def test_it_refuses_an_open_pause_without_now_and_a_pause_ending_before_it_starts():
    office = Calendar.office("UTC")
    start = at("UTC", 2026, 3, 9, 9)
    with pytest.raises(ValueError, match="needs `now`"):
        deadline(start, H, office, pauses=[(start, None)])
    with pytest.raises(ValueError, match=r"pauses\[0\]: ends before it starts"):
        deadline(start, H, office, pauses=[(start, start - timedelta(hours=1))])


# --- properties --------------------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Europe/London", "America/Sao_Paulo",
         "Australia/Lord_Howe", "Asia/Kathmandu"]


@st.composite
def weeks(draw, unit_minutes=60):
    """Valid weekly hours on a grid of `unit_minutes`, overnight shifts included."""
    slots = 24 * 60 // unit_minutes
    points = [sorted(draw(st.sets(st.integers(0, slots - 1), max_size=5))) for _ in range(7)]
    assume(any(points))
    days = []
    for day, p in enumerate(points):
        intervals = [(p[i], p[i + 1]) for i in range(0, len(p) - 1, 2)]
        if len(p) % 2:
            following = points[(day + 1) % 7]
            latest = min(p[-1], following[0]) if following else p[-1]
            intervals.append((p[-1], draw(st.integers(0, latest))))
        days.append([(time(*divmod(a * unit_minutes, 60)), time(*divmod(b * unit_minutes, 60)))
                     for a, b in intervals])
    return days


instants = st.datetimes(min_value=datetime(2017, 1, 1), max_value=datetime(2027, 12, 31),
                        timezones=st.just(UTC))


@st.composite
def calendars(draw, unit_minutes=60, zones=ZONES, holidays=True):
    tz = draw(st.sampled_from(zones))
    days = draw(weeks(unit_minutes))
    start = draw(instants)
    chosen = set()
    if holidays:
        offsets = draw(st.sets(st.integers(-2, 60), max_size=5))
        chosen = {start.date() + timedelta(days=k) for k in offsets}
    return Calendar(tz, days, holidays=chosen), start


def nominal_seconds(start, end):
    """Wall-clock length of an interval; end <= start runs into the next day."""
    seconds = (end.hour - start.hour) * 3600 + (end.minute - start.minute) * 60 + end.second - start.second
    return seconds if seconds > 0 else seconds + 86400


def oracle_open(cal, u):
    """Is instant u inside working hours? Read straight off the wall clock, interval by interval."""
    wall = u.astimezone(ZoneInfo(cal.tz))
    day, t = wall.date(), wall.time().replace(fold=0)
    if day not in cal.holidays:
        for start, end in cal.week[day.weekday()]:
            if (start <= t < end) if end > start else (t >= start):
                return True
    eve = day - timedelta(days=1)
    if eve not in cal.holidays:
        for start, end in cal.week[eve.weekday()]:
            if end <= start and t < end:
                return True
    return False


@props
@given(data=st.data(), slot_count=st.integers(0, 45 * 96))
def test_it_agrees_with_a_slot_by_slot_oracle(data, slot_count):
    # Whole-hour boundaries fall on a 15-minute UTC grid in all these zones, so working hours are on or off
    # for each whole slot; spans of up to 45 days exercise the whole-week shortcut too.
    cal, start = data.draw(calendars())
    slot = timedelta(minutes=15)
    start = start.replace(minute=start.minute // 15 * 15, second=0, microsecond=0)
    open_slots = [oracle_open(cal, start + k * slot) for k in range(slot_count)]
    end = start + slot_count * slot
    assert business_seconds_between(start, end, cal) == sum(open_slots) * 900
    wanted = data.draw(st.integers(1, max(1, sum(open_slots))))
    if sum(open_slots) >= wanted:
        nth = [k for k, is_on in enumerate(open_slots) if is_on][wanted - 1]
        assert add_business_time(start, wanted * 900, cal) == start + (nth + 1) * slot
        assert is_open(start + nth * slot, cal)


@props
@given(cal_start=calendars(unit_minutes=5), n=st.integers(0, 10**7))
def test_it_round_trips_adding_and_measuring_whole_seconds(cal_start, n):
    cal, start = cal_start
    due = add_business_time(start, n, cal)
    assert business_seconds_between(start, due, cal) == n


@props
@given(cal_start=calendars(unit_minutes=5), n=st.floats(0, 10**6, allow_nan=False))
def test_it_round_trips_fractional_seconds_to_the_microsecond(cal_start, n):
    cal, start = cal_start
    due = add_business_time(start, n, cal)
    assert business_seconds_between(start, due, cal) == pytest.approx(n, abs=1e-6)


@props
@given(cal_start=calendars(unit_minutes=5), a=st.integers(0, 3 * 10**6), b=st.integers(0, 3 * 10**6),
       shift=st.integers(0, 10**6))
def test_it_is_monotonic_in_the_target_and_in_the_start(cal_start, a, b, shift):
    cal, start = cal_start
    low, high = sorted((a, b))
    if low < high:
        assert add_business_time(start, low, cal) < add_business_time(start, high, cal)
    later = start + timedelta(seconds=shift)
    assert add_business_time(start, low, cal) <= add_business_time(later, low, cal)


@props
@given(tz=st.sampled_from(ZONES), start=instants, n=st.integers(0, 4 * 10**7), span=st.integers(0, 4 * 10**7))
def test_it_makes_24x7_equal_to_wall_clock_time(tz, start, n, span):
    always = Calendar.always(tz)
    assert add_business_time(start, n, always) == start + timedelta(seconds=n)
    assert business_seconds_between(start, start + timedelta(seconds=span), always) == span


@props
@given(cal_start=calendars(holidays=False), n=st.integers(1, 4 * 10**6), k=st.integers(-3, 120))
def test_it_never_makes_a_deadline_earlier_by_adding_a_holiday(cal_start, n, k):
    cal, start = cal_start
    holiday = start.astimezone(ZoneInfo(cal.tz)).date() + timedelta(days=k)
    assert add_business_time(start, n, cal.with_holidays([holiday])) >= add_business_time(start, n, cal)


@props
@given(cal_start=calendars(holidays=False), weeks_=st.integers(1, 10), extra=st.integers(0, 10**6), data=st.data())
def test_it_delays_a_deadline_by_exactly_the_working_hours_of_a_holiday_inside_the_span(cal_start, weeks_, extra,
                                                                                          data):
    cal, start = cal_start
    n = weeks_ * int(cal.weekly_seconds) + extra  # over a week of business time: spans at least six days
    zone = ZoneInfo(cal.tz)
    due = add_business_time(start, n, cal)
    first, last = start.astimezone(zone).date() + timedelta(days=1), due.astimezone(zone).date() - timedelta(days=2)
    assume(first <= last)
    holiday = data.draw(st.dates(min_value=first, max_value=last))
    # Only where no DST change touches the holiday's intervals, so its hours are their nominal length.
    offsets = {datetime.combine(holiday + timedelta(days=k), time(), tzinfo=zone).utcoffset() for k in range(3)}
    assume(len(offsets) == 1)
    hours = sum(nominal_seconds(s, e) for s, e in cal.week[holiday.weekday()])
    assert add_business_time(start, n, cal.with_holidays([holiday])) == add_business_time(start, n + hours, cal)


@props
@given(cal_start=calendars(unit_minutes=15), n=st.integers(1, 3 * 10**6), where=st.floats(0, 0.999),
       length=st.integers(0, 20 * 86400))
def test_it_moves_a_deadline_by_exactly_the_business_time_paused(cal_start, n, where, length):
    cal, start = cal_start
    due = add_business_time(start, n, cal)
    pause_start = start + (due - start) * where
    assume(pause_start < due)
    pause = (pause_start, pause_start + timedelta(seconds=length))
    paused = business_seconds_between(*pause, cal)
    assert deadline(start, n, cal, pauses=[pause]) == add_business_time(start, n + paused, cal)
    # Left open, the same pause seen at its end gives the same deadline.
    assert deadline(start, n, cal, pauses=[(pause_start, None)], now=pause[1]) == \
        deadline(start, n, cal, pauses=[pause])


@props
@given(cal_start=calendars(unit_minutes=15), span=st.integers(0, 30 * 86400), a=st.integers(-86400, 31 * 86400),
       b=st.integers(0, 5 * 86400))
def test_it_subtracts_exactly_the_paused_business_time_from_the_elapsed_time(cal_start, span, a, b):
    cal, start = cal_start
    end = start + timedelta(seconds=span)
    p_start = start + timedelta(seconds=a)
    p_end = p_start + timedelta(seconds=b)
    inside = business_seconds_between(max(start, p_start), min(end, p_end), cal)
    # The clock is exact in microseconds; only this subtraction of two floats needs the tolerance.
    assert business_seconds_between(start, end, cal, pauses=[(p_start, p_end)]) == \
        pytest.approx(business_seconds_between(start, end, cal) - inside, abs=1e-6)
