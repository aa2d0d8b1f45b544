"""Celery entry points of service requests: thin wrappers around the services. Importing this module registers
the outbox handlers "request.fulfil" (requests_app.fulfilment) and "requests.password_reset_mail"
(requests_app.handlers); every worker imports each app's tasks module."""

from celery import shared_task

from requests_app import approvals, fulfilment, handlers  # noqa: F401 - fulfilment and handlers register outbox handlers


@shared_task(acks_late=True)
def fulfilment_sweep() -> int:
    """Beat (every minute): fail automated runs whose outside tool never called back by the deadline."""
    return fulfilment.fulfilment_sweep()


@shared_task(acks_late=True, ignore_result=True)
def approvals_remind() -> int:
    """Beat (every APPROVAL_REMIND_SWEEP_SECONDS): remind approvers of approvals pending too long, once each."""
    return approvals.approvals_remind()
