"""Keep `BusinessCalendar.revision` moving: any change of a calendar, its intervals or holidays raises it, so
every process's cache of built calendars (sla.clocks.clock_calendar) rebuilds on its next use."""

from django.db.models import F
from django.db.models.signals import post_delete, post_save


def _bump(calendar_id) -> None:
    from sla.models import BusinessCalendar

    BusinessCalendar.objects.filter(id=calendar_id).update(revision=F("revision") + 1)


def _calendar_saved(sender, instance, created, raw=False, **kwargs):
    if not created and not raw:
        _bump(instance.id)


def _part_changed(sender, instance, raw=False, **kwargs):
    if not raw:
        _bump(instance.calendar_id)


def calendar_changed(calendar_id) -> None:
    """For writes that send no signal (bulk_create of holidays)."""
    _bump(calendar_id)


def connect() -> None:
    from sla.models import BusinessCalendar, Holiday, WorkingInterval

    post_save.connect(_calendar_saved, sender=BusinessCalendar, dispatch_uid="sla.calendar.saved")
    for model in (WorkingInterval, Holiday):
        post_save.connect(_part_changed, sender=model, dispatch_uid=f"sla.{model.__name__}.saved")
        post_delete.connect(_part_changed, sender=model, dispatch_uid=f"sla.{model.__name__}.deleted")
