"""Kernel tasks: thin wrappers that fetch by id and call one service."""

import logging
from datetime import timedelta

from celery import shared_task

from servicedesk import idempotency, notifications, outbox  # noqa: F401 - notifications registers handlers
from servicedesk.health import heartbeat_record

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def outbox_process(message_id: int) -> str | None:
    """Run one outbox message handed off on commit; a retry is handed off again with its backoff."""
    return outbox.outbox_process(message_id, reschedule=True)


@shared_task(ignore_result=True)
def outbox_process_many(message_ids: list[int]) -> int:
    """Run several outbox messages written together (outbox.hand_off_chunk), each claimed on its own."""
    return sum(outbox.outbox_process(message_id, reschedule=True) is not None for message_id in message_ids)


@shared_task(ignore_result=True)
def outbox_relay(min_age_seconds: float | None = None, queue: str | None = None) -> int:
    """Beat: re-drive outbox messages still pending past a short age (see settings.CELERY_BEAT_SCHEDULE): one
    entry per queue, published on that queue, relays the messages of that queue's handlers; without `queue`,
    every message."""
    min_age = None if min_age_seconds is None else timedelta(seconds=min_age_seconds)
    return outbox.outbox_relay(min_age=min_age, queue=queue)


@shared_task(ignore_result=True)
def outbox_purge() -> int:
    return outbox.outbox_purge()


@shared_task(ignore_result=True)
def idempotency_keys_purge() -> int:
    return idempotency.idempotency_keys_purge()


@shared_task(ignore_result=True)
def worker_heartbeat() -> None:
    """Run by beat every WORKER_HEARTBEAT_SECONDS: proves broker, beat and a worker all work."""
    heartbeat_record(worker=worker_heartbeat.request.hostname or "worker")
