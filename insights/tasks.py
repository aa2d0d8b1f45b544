"""Thin Celery wrappers of insights' periodic work (beat schedule: servicedesk.settings)."""

from celery import shared_task


@shared_task(acks_late=True)
def insights_rollup() -> int:
    """Recount the recent days and those whose tickets changed (insights.rollup.rollup_run)."""
    from insights.rollup import rollup_run

    return rollup_run()


@shared_task(acks_late=True)
def insights_rollup_rebuild() -> int:
    """Recount every day (insights.rollup.rollup_rebuild): the nightly catch-all for late changes."""
    from insights.rollup import rollup_rebuild

    return rollup_rebuild()


@shared_task(acks_late=True)
def insights_subscriptions_send() -> int:
    """Beat ("insights-subscriptions-send", every 15 minutes): queue the weekly e-mails that are due."""
    from insights.subscriptions import subscriptions_send_due

    return subscriptions_send_due()


@shared_task(acks_late=True)
def insights_improvements_measure() -> int:
    """Beat (daily): refresh the stored before/after figures of the improvement register."""
    from insights.improvements import improvements_measure_all

    return improvements_measure_all()
