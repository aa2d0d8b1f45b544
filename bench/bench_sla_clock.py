"""SLA clock engine: what one deadline costs (sla/clock.py is pure Python, no database here).

Prints microseconds per call of add_business_time for targets of 4 h, 5 days (120 h) and 1 year (8,760 h)
of business time on an office calendar (Mon-Fri 09:00-17:00 Europe/Berlin with public holidays) and on
24x7, of business_seconds_between over a day, a month and a year, of deadline with pauses, and of building
a Calendar (the services build one per event). In the same run, a naive loop that steps a minute at a time
and asks "is this minute working time?" does the 4 h case, for comparison. Figures, not a pass/fail test.
"""

import random
import sys
import time as clock
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sla import clock as sla_clock  # noqa: E402
from sla.clock import Calendar, add_business_time, business_seconds_between, deadline  # noqa: E402

H = 3600
BERLIN = ZoneInfo("Europe/Berlin")
HOLIDAYS = [date(year, m, d) for year in range(2026, 2032)
            for m, d in ((1, 1), (5, 1), (10, 3), (12, 24), (12, 25), (12, 26), (12, 31))]
OFFICE = Calendar.office("Europe/Berlin", holidays=HOLIDAYS)
ALWAYS = Calendar.always("Europe/Berlin")

rng = random.Random(7)
STARTS = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(200)]


def per_call_us(fn, args_list, min_seconds=0.3) -> float:
    calls, started = 0, clock.perf_counter()
    while True:
        for args in args_list:
            fn(*args)
        calls += len(args_list)
        elapsed = clock.perf_counter() - started
        if elapsed >= min_seconds:
            return elapsed / calls * 1e6


def naive_add(start: datetime, seconds: int, calendar: Calendar) -> datetime:
    """The per-minute loop a first attempt writes: step a minute, count it if the wall clock is in hours."""
    zone = ZoneInfo(calendar.tz)
    t = start.replace(second=0, microsecond=0)
    minutes = seconds // 60
    while minutes:
        wall = t.astimezone(zone)
        if wall.date() not in calendar.holidays and any(
                s <= wall.time() < e for s, e in calendar.week[wall.weekday()]):
            minutes -= 1
        t += timedelta(minutes=1)
    return t


def main() -> None:
    print(f"{len(STARTS)} random start instants in 2026; office = Mon-Fri 09-17 Europe/Berlin, "
          f"{len(HOLIDAYS)} holidays 2026-2031")
    sla_clock._offset_changes.cache_clear()
    started = clock.perf_counter()
    add_business_time(STARTS[0], 120 * H, OFFICE)
    cold = (clock.perf_counter() - started) * 1e6
    print(f"first call of the process (scans the midnights of the year once per zone, then cached): {cold:.0f} µs")
    print("\nadd_business_time (µs/call)")
    print(f"  {'target':<22}{'office':>10}{'24x7':>10}   office span")
    for label, seconds in (("4 h", 4 * H), ("5 days (120 h)", 120 * H), ("1 year (8,760 h)", 8760 * H)):
        office = per_call_us(add_business_time, [(s, seconds, OFFICE) for s in STARTS])
        always = per_call_us(add_business_time, [(s, seconds, ALWAYS) for s in STARTS])
        span = add_business_time(STARTS[0], seconds, OFFICE) - STARTS[0]
        print(f"  {label:<22}{office:>10.1f}{always:>10.1f}   ~{span.days} days")

    sample = STARTS[:20]
    naive = per_call_us(naive_add, [(s, 4 * H, OFFICE) for s in sample], min_seconds=1.0)
    ours = per_call_us(add_business_time, [(s, 4 * H, OFFICE) for s in sample])
    same = all(naive_add(s, 4 * H, OFFICE) == add_business_time(s.replace(second=0, microsecond=0), 4 * H, OFFICE)
               for s in sample)
    print(f"\n  naive per-minute loop, 4 h on office: {naive:,.0f} µs/call "
          f"(clock engine {ours:.1f} µs: {naive / ours:,.0f}x faster; same results: {same})")

    print("\nbusiness_seconds_between (µs/call)")
    print(f"  {'span':<22}{'office':>10}{'24x7':>10}")
    for label, span in (("1 day", timedelta(days=1)), ("1 month", timedelta(days=30)),
                        ("1 year", timedelta(days=365))):
        office = per_call_us(business_seconds_between, [(s, s + span, OFFICE) for s in STARTS])
        always = per_call_us(business_seconds_between, [(s, s + span, ALWAYS) for s in STARTS])
        print(f"  {label:<22}{office:>10.1f}{always:>10.1f}")

    pauses = [[(s + timedelta(hours=2), s + timedelta(hours=20)), (s + timedelta(days=2), None)] for s in STARTS]
    with_pauses = per_call_us(deadline, [(s, 16 * H, OFFICE, p, s + timedelta(days=3))
                                         for s, p in zip(STARTS, pauses, strict=True)])
    print(f"\ndeadline, 16 h target, one closed and one open pause, office: {with_pauses:.1f} µs/call")
    build = per_call_us(lambda: Calendar("Europe/Berlin", [[(time(8), time(12)), (time(13), time(17))]] * 5
                                         + [[], []], holidays=HOLIDAYS), [()])
    print(f"Calendar(...) with two intervals a day and {len(HOLIDAYS)} holidays: {build:.1f} µs")


if __name__ == "__main__":
    main()
