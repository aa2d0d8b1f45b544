"""Event figures on /metrics (servicedesk.metrics): events received, processed and waiting.

Read from the database, so every web process reports the same and a restart loses nothing:
`servicedesk_events_received_total` is the highest event id (ids only grow; an insert rolled back leaves a
gap), `servicedesk_events_unprocessed` counts the events the worker has not processed yet on the partial index
event_unprocessed_idx (it holds only those), and processed = received - unprocessed, which only grows too.
Deleting old processed events (retention) changes none of them.
"""

from django.db.models import Count, Max, Min
from django.utils import timezone

from monitoring.models import Event
from servicedesk.metrics import age_seconds, counter, gauge
from servicedesk.registry import MetricFamily


def event_figures(now=None) -> list[MetricFamily]:
    now = now or timezone.now()
    received = Event.objects.aggregate(last=Max("id"))["last"] or 0
    waiting = Event.objects.filter(processed_at__isnull=True).aggregate(n=Count("id"), first=Min("received_at"))
    return [
        counter("servicedesk_events_received_total", "Monitoring events received (highest event id).", received),
        counter("servicedesk_events_processed_total", "Monitoring events processed: received minus those still "
                "waiting.", max(0, received - waiting["n"])),
        gauge("servicedesk_events_unprocessed", "Monitoring events received and not processed yet.", waiting["n"]),
        gauge("servicedesk_events_oldest_unprocessed_age_seconds", "Seconds the oldest unprocessed event has been "
              "waiting (0: none).", age_seconds(waiting["first"], now)),
    ]
