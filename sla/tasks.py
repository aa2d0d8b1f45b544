"""Celery entry points of service level management: thin wrappers around sla.sweep. Importing this module
also registers the "sla.escalate" outbox handler (every worker imports each app's tasks module)."""

from celery import shared_task

from sla import escalations, retime  # noqa: F401 - register their outbox handlers
from sla.sweep import sla_sweep as _sweep


@shared_task(acks_late=True)
def sla_sweep() -> dict:
    """Beat (every SlaSettings.sweep_interval_seconds): mark due warnings and breaches, queue escalations."""
    result = _sweep()
    return {"breached": result.breached, "warned": result.warned}
