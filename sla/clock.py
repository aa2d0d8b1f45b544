"""Business-time arithmetic for SLA clocks: pure Python, standard library only (no Django, no ORM).

    cal = Calendar.office("Europe/London")                       # Mon-Fri 09:00-17:00
    add_business_time(friday_16h, 4 * 3600, cal)                 # -> Monday 12:00
    business_seconds_between(start, end, cal, pauses=[(p0, p1)]) # float seconds, pauses excluded
    deadline(start, target_seconds, cal, pauses=[(p0, None)], now=now)

Instants are aware datetimes in and out (a result carries the tzinfo of the start it was computed from);
naive ones are refused. Local (wall-clock) time exists only inside, to lay a calendar's weekly hours on
real days. Internally an instant is an integer count of microseconds since the Unix epoch, so sums and
round trips are exact.

Choices, also described in docs/architecture.md ("SLA clock engine"):

- A working interval belongs to the local date on which it STARTS. An interval whose end is not after its
  start (22:00-06:00, or 00:00-00:00 for a whole day) runs into the next day.
- A holiday is a local date on which no interval starts. An overnight shift that started the evening before
  a holiday still runs into the holiday's morning; the shift that would start on the holiday's evening does
  not run.
- DST: an interval lasts its real length. 09:00-17:00 is 8 h on any day where the change happens at night;
  22:00-06:00 across the change is 7 h (spring) or 9 h (autumn). A wall time that does not exist (in the
  spring gap) means the instant the clocks jump; a wall time that occurs twice (the autumn repeated hour)
  means its first occurrence.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "Calendar",
    "add_business_time",
    "business_seconds_between",
    "deadline",
    "is_open",
    "next_opening",
]

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_US = 1_000_000
_DAY_US = 86_400 * _US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ONE_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)

Pause = tuple[datetime, datetime | None]


def _time_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _US + t.microsecond


def _hhmm(t: time) -> str:
    return t.isoformat(timespec="seconds" if t.second or t.microsecond else "minutes")


@dataclass(frozen=True)
class Calendar:
    """Working hours in one timezone: intervals per weekday (Mon=0..Sun=6) and holidays (local dates).

    `week` may be given as a sequence of seven lists or a mapping {weekday: [(start, end), ...]} (missing
    days have no hours); it is stored as a tuple of seven tuples of (start, end), sorted by start.
    """

    tz: str
    week: tuple[tuple[tuple[time, time], ...], ...]
    holidays: frozenset[date] = frozenset()

    # Derived once in __post_init__, not part of equality.
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _days: tuple = field(init=False, repr=False, compare=False)
    _week_us: int = field(init=False, repr=False, compare=False)
    _day_us: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _sorted_holidays: tuple[date, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.tz, str) or not self.tz:
            raise ValueError("tz: an IANA timezone name is required, e.g. 'Europe/Berlin'")
        try:
            zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"tz: unknown timezone {self.tz!r}") from exc
        week = _normalise_week(self.week)
        holidays = frozenset(self.holidays)
        for day in holidays:
            if not isinstance(day, date) or isinstance(day, datetime):
                raise ValueError(f"holidays: {day!r} is not a date")
        days, week_us = _check_week(week)
        set_ = object.__setattr__
        set_(self, "week", week)
        set_(self, "holidays", holidays)
        set_(self, "_zone", zone)
        set_(self, "_days", days)
        set_(self, "_week_us", week_us)
        set_(self, "_day_us", tuple(sum(_nominal_us(i) for i in day) for day in days))
        set_(self, "_sorted_holidays", tuple(sorted(holidays)))

    @classmethod
    def always(cls, tz: str, holidays: Iterable[date] = ()) -> Calendar:
        """24x7: every day 00:00-00:00 (a whole day); business time is wall-clock time."""
        return cls(tz=tz, week=tuple(((time(0), time(0)),) for _ in range(7)), holidays=frozenset(holidays))

    @classmethod
    def office(cls, tz: str, start: time = time(9), end: time = time(17), days: Iterable[int] = range(5),
               holidays: Iterable[date] = ()) -> Calendar:
        """The same hours on the given weekdays (default Mon-Fri 09:00-17:00)."""
        chosen = set(days)
        for day in chosen:
            if not isinstance(day, int) or not 0 <= day <= 6:
                raise ValueError(f"days: {day!r} is not a weekday number 0 (Monday) to 6 (Sunday)")
        week = tuple(((start, end),) if day in chosen else () for day in range(7))
        return cls(tz=tz, week=week, holidays=frozenset(holidays))

    @property
    def weekly_seconds(self) -> float:
        """Nominal business seconds in a week (no holiday, no DST change)."""
        return self._week_us / _US

    def with_holidays(self, extra: Iterable[date]) -> Calendar:
        return Calendar(tz=self.tz, week=self.week, holidays=self.holidays | frozenset(extra))


def _normalise_week(week) -> tuple:
    if isinstance(week, Mapping):
        unknown = [k for k in week if not (isinstance(k, int) and 0 <= k <= 6)]
        if unknown:
            raise ValueError(f"week: {unknown[0]!r} is not a weekday number 0 (Monday) to 6 (Sunday)")
        week = [week.get(day, ()) for day in range(7)]
    if isinstance(week, str | bytes) or not isinstance(week, Sequence) or len(week) != 7:
        raise ValueError("week: seven lists of (start, end) intervals are required, Monday first")
    result = []
    for day, intervals in enumerate(week):
        name = WEEKDAYS[day]
        pairs = []
        for interval in intervals or ():
            try:
                start, end = interval
            except (TypeError, ValueError) as exc:
                raise ValueError(f"week[{name}]: {interval!r} is not a (start, end) pair") from exc
            for t in (start, end):
                if not isinstance(t, time):
                    raise ValueError(f"week[{name}]: {t!r} is not a datetime.time")
                if t.tzinfo is not None:
                    raise ValueError(f"week[{name}]: times are local wall-clock times, without tzinfo")
            pairs.append((start.replace(fold=0), end.replace(fold=0)))
        pairs.sort()
        result.append(tuple(pairs))
    return tuple(result)


def _nominal_us(interval) -> int:
    start_us, end_us, end_offset = interval[:3]
    return end_us - start_us + end_offset * _DAY_US


def _check_week(week) -> tuple[tuple, int]:
    """Refuse overlaps (within a day, and an overnight shift running into the next day's hours).

    Returns per weekday the intervals as (start_us, end_us, end_day_offset, start, end) and the nominal
    weekly length in microseconds.
    """
    days = []
    week_us = 0
    for day, pairs in enumerate(week):
        name = WEEKDAYS[day]
        compiled = []
        previous = None
        for start, end in pairs:
            start_us, end_us = _time_us(start), _time_us(end)
            overnight = end_us <= start_us
            length = end_us - start_us + (_DAY_US if overnight else 0)
            if previous is not None:
                p_start, p_end, p_reach = previous
                if p_reach > start_us:
                    raise ValueError(f"week[{name}]: intervals {_hhmm(p_start)}-{_hhmm(p_end)} and "
                                     f"{_hhmm(start)}-{_hhmm(end)} overlap")
            previous = (start, end, start_us + length)
            week_us += length
            compiled.append((start_us, end_us, 1 if overnight else 0, start, end))
        days.append(tuple(compiled))
    for day in range(7):
        if days[day] and days[day][-1][2]:
            _, end_us, _, start, end = days[day][-1]
            following = (day + 1) % 7
            if days[following] and days[following][0][0] < end_us:
                first = days[following][0]
                raise ValueError(
                    f"week[{WEEKDAYS[day]}]: the overnight interval {_hhmm(start)}-{_hhmm(end)} runs into "
                    f"{WEEKDAYS[following]}'s {_hhmm(first[3])}-{_hhmm(first[4])}")
    if week_us == 0:
        raise ValueError("week: no working hours at all; a calendar needs at least one interval")
    return tuple(days), week_us


# --- instants ---------------------------------------------------------------------------------------

def _us(value: datetime, name: str) -> int:
    if not isinstance(value, datetime):
        raise ValueError(f"{name}: an aware datetime is required, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: naive datetime {value.isoformat()}; an aware datetime is required")
    return (value - _EPOCH) // _ONE_US


def _instant(us: int, like: datetime) -> datetime:
    return (_EPOCH + timedelta(microseconds=us)).astimezone(like.tzinfo)


def _seconds_us(seconds, name: str) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError(f"{name}: a number of seconds is required, got {type(seconds).__name__}")
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError(f"{name}: {seconds} is not a finite number of seconds")
    if seconds < 0:
        raise ValueError(f"{name}: {seconds} is negative")
    return seconds * _US if isinstance(seconds, int) else round(seconds * _US)


def _local_date(cal: Calendar, us: int) -> date:
    return (_EPOCH + timedelta(microseconds=us)).astimezone(cal._zone).date()


def _offset_us(dt: datetime) -> int:
    return dt.utcoffset() // _ONE_US


def _wall_us(cal: Calendar, day: date, t: time, t_us: int) -> int:
    """The instant of local wall time `t` on `day`: first occurrence if repeated, the jump if skipped."""
    wall = (day.toordinal() - _EPOCH_ORDINAL) * _DAY_US + t_us
    local = datetime.combine(day, t, tzinfo=cal._zone)
    before = _offset_us(local)
    after = _offset_us(local.replace(fold=1))
    if before >= after:  # an ordinary time, or the first of a repeated one (fold=0)
        return wall - before
    # In the spring gap: `wall - after` is before the jump and `wall - before` after it. Find the jump
    # (rare: only for a boundary inside the gap).
    lo, hi = wall - after, wall - before
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_us((_EPOCH + timedelta(microseconds=mid)).astimezone(cal._zone)) == after:
            hi = mid
        else:
            lo = mid
    return hi


def _spans(cal: Calendar, day: date) -> list[tuple[int, int]]:
    """Working spans (absolute microseconds) of the intervals that start on local date `day`."""
    if day in cal.holidays:
        return []
    result = []
    for start_us, end_us, end_offset, start, end in cal._days[day.weekday()]:
        a = _wall_us(cal, day, start, start_us)
        b = _wall_us(cal, day + _DAY if end_offset else day, end, end_us)
        if b > a:  # an interval entirely inside a spring gap is empty
            result.append((a, b))
    return result


@lru_cache(maxsize=1024)
def _offset_changes(zone: ZoneInfo, year: int) -> tuple[date, ...]:
    """Dates of `year` whose local midnight has another UTC offset than the midnight before.

    One look-up per day of the year, once per zone and year (cached).
    """
    day = date(year, 1, 1)
    previous = datetime.combine(day - _DAY, time(), tzinfo=zone).utcoffset()
    changes = []
    while day.year == year:
        offset = datetime.combine(day, time(), tzinfo=zone).utcoffset()
        if offset != previous:
            changes.append(day)
        previous = offset
        day += _DAY
    return tuple(changes)


def _next_irregular(cal: Calendar, day: date) -> date:
    """The first date from `day` on whose intervals may not have their nominal length.

    That is a holiday, or a day whose intervals (which end by the second midnight after it) may straddle an
    offset change: the two days before a date whose midnight offset differs from the previous midnight's.
    Every day before the returned date therefore counts exactly its nominal hours. Offset changes are found
    at midnights; two changes between two midnights would go unseen, but in tzdata no two offset changes of
    a zone are less than about four days apart. Looks at most two years ahead (a later date is returned
    as irregular, which only costs one ordinary day's work).
    """
    found = date(min(day.year + 2, 9999), 1, 1)
    holidays = cal._sorted_holidays
    i = bisect_left(holidays, day)
    if i < len(holidays) and holidays[i] < found:
        found = holidays[i]
    after = day + _DAY
    for year in (after.year, min(after.year + 1, 9999)):
        changes = _offset_changes(cal._zone, year)
        j = bisect_left(changes, after)
        if j < len(changes):
            found = min(found, max(day, changes[j] - 2 * _DAY))
            break
    return found


_WEEK = timedelta(days=7)


def _add_us(cal: Calendar, start: int, amount: int) -> int:
    if amount == 0:
        return start
    first_day = _local_date(cal, start)
    day = first_day - _DAY  # an overnight interval of the day before may still be running
    week_us, day_us = cal._week_us, cal._day_us
    irregular = day
    while True:
        if day > first_day:
            # Days before `irregular` count their nominal hours: skip whole weeks, then whole days, while
            # more than that remains; the day where the target is reached is walked interval by interval.
            if day >= irregular:
                irregular = _next_irregular(cal, day)
            weeks = min((irregular - day).days // 7, (amount - 1) // week_us)
            if weeks > 0:
                amount -= weeks * week_us
                day += weeks * _WEEK
            while day < irregular and amount > day_us[day.weekday()]:
                amount -= day_us[day.weekday()]
                day += _DAY
        for a, b in _spans(cal, day):
            if b <= start:
                continue
            if a < start:
                a = start
            if b - a >= amount:
                return a + amount
            amount -= b - a
        day += _DAY


def _between_us(cal: Calendar, start: int, end: int) -> int:
    if end <= start:
        return 0
    first_day = _local_date(cal, start)
    last_day = _local_date(cal, end)
    day = first_day - _DAY
    week_us, day_us = cal._week_us, cal._day_us
    irregular = day
    total = 0
    while day <= last_day:
        # A day's intervals end before its second midnight: a day after the start's date and at least two
        # days before the end's date lies wholly inside (start, end).
        if day > first_day:
            if day >= irregular:
                irregular = _next_irregular(cal, day)
            inner = min(irregular, last_day - _DAY)  # days before this one are plain and inside
            weeks = (inner - day).days // 7
            if weeks > 0:
                total += weeks * week_us
                day += weeks * _WEEK
            while day < inner:
                total += day_us[day.weekday()]
                day += _DAY
        for a, b in _spans(cal, day):
            if a < start:
                a = start
            if b > end:
                b = end
            if b > a:
                total += b - a
        day += _DAY
    return total


def _merged_pauses(pauses, start: int, end: int | None, now: int | None) -> list[tuple[int, int]]:
    """Pauses as sorted, disjoint absolute spans clipped to [start, end]; an open pause runs to `now`."""
    spans = []
    for index, pause in enumerate(pauses or ()):
        try:
            p_start, p_end = pause
        except (TypeError, ValueError) as exc:
            raise ValueError(f"pauses[{index}]: {pause!r} is not a (start, end) pair") from exc
        a = _us(p_start, f"pauses[{index}].start")
        if p_end is None:
            if now is None:
                raise ValueError(f"pauses[{index}]: an open pause (end None) needs `now`")
            if now < a:
                raise ValueError(f"now: before the start of the open pause pauses[{index}]")
            b = now
        else:
            b = _us(p_end, f"pauses[{index}].end")
            if b < a:
                raise ValueError(f"pauses[{index}]: ends before it starts")
        a = max(a, start)
        if end is not None:
            b = min(b, end)
        if b > a:
            spans.append((a, b))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


# --- the API ----------------------------------------------------------------------------------------

def add_business_time(start: datetime, seconds: float | int, calendar: Calendar) -> datetime:
    """The instant at which `seconds` of business time have elapsed since `start`.

    Outside working hours counting begins at the next opening. Zero seconds returns `start`.
    """
    s = _us(start, "start")
    return _instant(_add_us(calendar, s, _seconds_us(seconds, "seconds")), start)


def business_seconds_between(start: datetime, end: datetime, calendar: Calendar,
                             pauses: Iterable[Pause] = ()) -> float:
    """Business seconds in [start, end], minus the business time of `pauses` (0 if end <= start).

    A pause is (start, end); an open pause (end None) lasts until `end`.
    """
    s, e = _us(start, "start"), _us(end, "end")
    if e <= s:
        return 0.0
    total = _between_us(calendar, s, e)
    for a, b in _merged_pauses(pauses, s, e, now=e):
        total -= _between_us(calendar, a, b)
    return total / _US


def deadline(start: datetime, target_seconds: float | int, calendar: Calendar,
             pauses: Iterable[Pause] = (), now: datetime | None = None) -> datetime:
    """When a clock started at `start` reaches `target_seconds` of business time, not counting `pauses`.

    An open pause (end None) lasts until `now` (required then): the result is the due instant if the
    clock resumed at `now`. Use a fraction of the target for the warning instant.
    """
    s = _us(start, "start")
    remaining = _seconds_us(target_seconds, "target_seconds")
    now_us = None if now is None else _us(now, "now")
    at = s
    for a, b in _merged_pauses(pauses, s, None, now_us):
        running = _between_us(calendar, at, a)
        if running >= remaining:
            break  # due before this pause begins
        remaining -= running
        at = b
    return _instant(_add_us(calendar, at, remaining), start)


def is_open(at: datetime, calendar: Calendar) -> bool:
    """Whether `at` lies inside a working interval (start included, end excluded)."""
    u = _us(at, "at")
    day = _local_date(calendar, u)
    return any(a <= u < b for d in (day - _DAY, day) for a, b in _spans(calendar, d))


def next_opening(at: datetime, calendar: Calendar) -> datetime:
    """`at` if working hours are on, else the start of the next working interval."""
    u = _us(at, "at")
    day = _local_date(calendar, u) - _DAY
    while True:
        for a, b in _spans(calendar, day):
            if b > u:
                return at if a <= u else _instant(a, at)
        day += _DAY
