"""Instants in Europe/London, where the SLA tests' office calendar works Mon-Fri 09:00-17:00."""

from datetime import datetime
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def at(*args) -> datetime:
    """`at(2026, 11, 27, 16, 0)`: that wall-clock time in London."""
    return datetime(*args, tzinfo=LONDON)
