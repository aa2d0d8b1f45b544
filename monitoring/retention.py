"""Monitoring's part in retention (servicedesk.retention, docs/retention.md): raw events go
RETENTION_EVENTS_DAYS after they were received, once processed (an unprocessed one is still to be read). Alerts
stay: they hold the count and the first and last times of their events."""

from datetime import timedelta

from django.conf import settings

from servicedesk.registry import RetentionRule, registry


def _keep() -> timedelta | None:
    return timedelta(days=settings.RETENTION_EVENTS_DAYS) if settings.RETENTION_EVENTS_DAYS else None


def _due(cutoff):
    """Through event_received_idx (received_at), oldest first."""
    from monitoring.models import Event

    return Event.objects.filter(received_at__lt=cutoff, processed_at__isnull=False)


def register() -> None:
    registry.retention_rule(RetentionRule(key="monitoring.events", label="processed monitoring events",
                                          keep=_keep, due=_due, date_field="received_at", order=20))
