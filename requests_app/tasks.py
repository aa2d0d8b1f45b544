"""Celery entry points of service requests: thin wrappers around the services."""

from celery import shared_task

from requests_app import approvals


@shared_task(acks_late=True, ignore_result=True)
def approvals_remind() -> int:
    """Beat (every APPROVAL_REMIND_SWEEP_SECONDS): remind approvers of approvals pending too long, once each."""
    return approvals.approvals_remind()
