"""Every write of the SLA configuration that is not a plain admin form: importing public holidays and
ensuring the default calendars and policies."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from servicedesk.schedules import beat_interval_apply
from servicedesk.services import audit_record
from sla.models import BusinessCalendar, Holiday
from sla.retime import retime_enqueue
from sla.signals import calendar_changed

YEAR_MIN, YEAR_MAX, YEARS_AT_ONCE = 1950, 2100, 10


@dataclass(frozen=True)
class HolidayImport:
    added: int
    kept: int


def holidays_check(*, country: str, subdivision: str = "", year_from: int, year_to: int) -> tuple[str, str]:
    """The country and subdivision codes, normalised, or a ValidationError naming each bad field."""
    import holidays

    supported = holidays.list_supported_countries()
    country = (country or "").strip().upper()
    subdivision = (subdivision or "").strip().upper()
    errors = {}
    if country not in supported:
        errors["country"] = f"Unknown country code {country!r}: use an ISO 3166 code such as GB, DE or US."
    elif subdivision and subdivision not in supported[country]:
        known = ", ".join(supported[country]) or "none"
        errors["subdivision"] = f"{country} has no subdivision {subdivision!r}; known: {known}."
    for name, year in (("year_from", year_from), ("year_to", year_to)):
        if not isinstance(year, int) or not YEAR_MIN <= year <= YEAR_MAX:
            errors[name] = f"Give a year from {YEAR_MIN} to {YEAR_MAX}."
    if not errors.keys() & {"year_from", "year_to"}:
        if year_to < year_from:
            errors["year_to"] = "Must not be before the first year."
        elif year_to - year_from + 1 > YEARS_AT_ONCE:
            errors["year_to"] = f"Import at most {YEARS_AT_ONCE} years at once."
    if errors:
        raise ValidationError(errors)
    return country, subdivision


@transaction.atomic
def holidays_import(*, calendar_id: int, country: str, subdivision: str = "", year_from: int, year_to: int,
                    actor) -> HolidayImport:
    """Add the public holidays of a country (and subdivision) for a range of years to a calendar. Dates the
    calendar already has are kept as they are (also hand-entered ones), so running it twice adds nothing."""
    country, subdivision = holidays_check(country=country, subdivision=subdivision, year_from=year_from,
                                          year_to=year_to)
    import holidays

    # The lock serialises two imports into one calendar, so neither trips over the other's new rows.
    calendar = BusinessCalendar.objects.select_for_update().get(id=calendar_id)
    found = holidays.country_holidays(country, subdiv=subdivision or None, years=range(year_from, year_to + 1))
    have = set(calendar.holidays.filter(date__in=list(found)).values_list("date", flat=True))
    new = [Holiday(calendar=calendar, date=day, name=name[:120]) for day, name in sorted(found.items())
           if day not in have]
    if not new:
        return HolidayImport(added=0, kept=len(have))  # nothing changed: nothing to record
    Holiday.objects.bulk_create(new)
    where = f"{country}-{subdivision}" if subdivision else country
    calendar_changed(calendar.id)  # bulk_create sends no post_save
    retime_enqueue(calendar_id=calendar.id, reason=f"Holidays of {where} {year_from}-{year_to} added to {calendar}")
    audit_record(actor=actor, action="businesscalendar.holidays_imported", obj=calendar, changes={
        "before": {}, "after": {"source": f"{where} {year_from}-{year_to}", "holidays": [str(h) for h in new]},
    })
    return HolidayImport(added=len(new), kept=len(have))


SWEEP_TASK_NAME = "sla-sweep"
SWEEP_TASK = "sla.tasks.sla_sweep"


def sweep_schedule_apply(interval_seconds: int, *, apps=None) -> None:
    """Point beat's "sla-sweep" entry (django-celery-beat, read by the DatabaseScheduler) at this interval,
    creating it when missing. Called when SLA settings are saved and by migration sla.0003. `apps` is a
    migration's app registry."""
    beat_interval_apply(name=SWEEP_TASK_NAME, task=SWEEP_TASK, every=interval_seconds, period="seconds",
                        description="Marks SLA warnings and breaches and queues their escalations.", apps=apps)
