"""Kernel tasks: thin wrappers that fetch by id and call one service."""

import logging

from celery import shared_task

from servicedesk import notifications
from servicedesk.health import heartbeat_record

log = logging.getLogger(__name__)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, retry_backoff_max=600, max_retries=8)
def email_send(*, template: str, to: list[str], context: dict) -> int:
    return notifications.email_render_and_send(template=template, to=to, context=context)


@shared_task(bind=True, acks_late=True, max_retries=8)
def webhook_deliver(self, *, delivery_id: int) -> str:
    try:
        return notifications.webhook_send(delivery_id).state
    except notifications.WebhookTransientError as exc:
        if self.request.retries >= self.max_retries:
            notifications.webhook_give_up(delivery_id, f"gave up after {self.request.retries + 1} attempts: {exc}")
            return "failed"
        raise self.retry(exc=exc, countdown=min(600, 5 * 2**self.request.retries)) from exc


@shared_task(ignore_result=True)
def worker_heartbeat() -> None:
    """Run by beat every WORKER_HEARTBEAT_SECONDS: proves broker, beat and a worker all work."""
    heartbeat_record(worker=worker_heartbeat.request.hostname or "worker")
