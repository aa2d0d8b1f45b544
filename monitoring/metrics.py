"""Event figures on /metrics (servicedesk.metrics): events received, processed and waiting.

Read from the database, so every web process reports the same and a restart loses nothing:
`servicedesk_events_received_max_id` is the highest event id, `servicedesk_events_unprocessed` counts the
events the worker has not processed yet on the partial index event_unprocessed_idx (it holds only those), and
`servicedesk_events_processed_estimate` = highest id - unprocessed. The first and last are gauges, not counters:
they can go down (an insert with a lower id that commits after a higher one; retention deleting the newest
event), which Prometheus would read as a counter reset. Use delta()/deriv() on them, not rate().
"""

from django.db.models import Count, Max, Min
from django.utils import timezone

from monitoring.models import Event
from servicedesk.metrics import age_seconds, gauge
from servicedesk.registry import MetricFamily


def event_figures(now=None) -> list[MetricFamily]:
    now = now or timezone.now()
    received = Event.objects.aggregate(last=Max("id"))["last"] or 0
    waiting = Event.objects.filter(processed_at__isnull=True).aggregate(n=Count("id"), first=Min("received_at"))
    return [
        gauge("servicedesk_events_received_max_id", "Highest monitoring event id stored (grows with events "
              "received; may step back: not a counter).", received),
        gauge("servicedesk_events_processed_estimate", "Monitoring events processed, estimated: highest event id "
              "minus the events still waiting (may step back: not a counter).", max(0, received - waiting["n"])),
        gauge("servicedesk_events_unprocessed", "Monitoring events received and not processed yet.", waiting["n"]),
        gauge("servicedesk_events_oldest_unprocessed_age_seconds", "Seconds the oldest unprocessed event has been "
              "waiting (0: none).", age_seconds(waiting["first"], now)),
    ]
