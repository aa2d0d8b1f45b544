"""Periods of whole local days, as reports take them from a query string (`from`, `to` as YYYY-MM-DD): parsing
with field-named errors, bounds that keep every derived date inside the calendar, and the instants a period
starts and ends at in the site's time zone. Shared by the SLA report and the service insights."""

import re
from datetime import date, datetime, time, timedelta

from django.utils import timezone

FIRST_DAY = date(2000, 1, 1)  # the earliest date a report accepts; the latest is a year after today
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def last_day(today: date) -> date:
    """The latest date a report accepts: a year after `today` (28 Feb for 29 Feb). Beyond these bounds a
    period's end, or the period before it, would leave the calendar (years 1 and 9999)."""
    try:
        return today.replace(year=today.year + 1)
    except ValueError:
        return today.replace(year=today.year + 1, day=28)


def parse_day(value, name: str, errors: dict, *, today: date | None = None) -> date | None:
    """The date `value` spells (YYYY-MM-DD) within the accepted bounds, or None with errors[name] saying why."""
    today = today or timezone.localdate()
    if value is None or value == "":
        errors[name] = "Required: a date as YYYY-MM-DD."
        return None
    try:
        if not isinstance(value, str) or not _DATE.match(value):
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        errors[name] = f"{value!r} is not a date: write YYYY-MM-DD, e.g. {today.isoformat()}."
        return None
    if not FIRST_DAY <= day <= last_day(today):
        errors[name] = f"{value} is out of range: give a date from {FIRST_DAY.isoformat()} to " \
                       f"{last_day(today).isoformat()}."
        return None
    return day


def check_period(date_from: date | None, date_to: date | None, errors: dict, *, max_days: int) -> None:
    """errors["to"] when `to` is before `from` or the period is longer than `max_days` days."""
    if date_from and date_to:
        if date_to < date_from:
            errors["to"] = f"Must not be before from ({date_from.isoformat()})."
        elif (date_to - date_from).days + 1 > max_days:
            errors["to"] = f"The period may span at most {max_days} days; this one spans " \
                           f"{(date_to - date_from).days + 1}."


def day_start(day: date) -> datetime:
    """The first instant of `day` in the site's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def day_after(day: date) -> datetime:
    """The first instant after `day` (midnight after it, in the site's time zone)."""
    return day_start(day + timedelta(days=1))
