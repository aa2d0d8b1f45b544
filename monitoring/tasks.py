"""Celery side of monitoring. Importing this module registers the outbox handler "monitoring.process" (every
worker imports each app's tasks module) and the beat tasks that re-drive stranded events and settle flapping
alerts."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from monitoring.ingest import PROCESS_HANDLER
from monitoring.processing import events_redrive, flap_settle, process_events
from servicedesk.outbox import outbox_handler


@outbox_handler(PROCESS_HANDLER, retry_on=(OperationalError, InterfaceError), max_attempts=12, queue="events")
def _process(message):
    """The events one ingestion request stored, processed in order. A database hiccup (a deadlock between two
    workers, a dropped connection) rolls the message back and retries it; events already processed are skipped,
    so a retry or a second delivery changes nothing twice."""
    process_events(message.payload["event_ids"])
    return None


@shared_task(acks_late=True)
def monitoring_events_redrive() -> int:
    """Beat (every minute): events left unprocessed a while after they arrived."""
    return events_redrive()


@shared_task(acks_late=True)
def monitoring_flap_settle() -> int:
    """Beat (every minute): flapping alerts that have been quiet for the flap window settle."""
    return flap_settle()
