"""Celery entry points of service requests: thin wrappers. Importing this module registers the outbox handlers
"request.fulfil" (requests_app.fulfilment) and "requests.password_reset_mail" (requests_app.handlers); every
worker imports each app's tasks module."""

from celery import shared_task

from requests_app import fulfilment, handlers  # noqa: F401 - register their outbox handlers


@shared_task(acks_late=True)
def fulfilment_sweep() -> int:
    """Beat (every minute): fail automated runs whose outside tool never called back by the deadline."""
    return fulfilment.fulfilment_sweep()
