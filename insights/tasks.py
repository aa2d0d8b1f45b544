"""Thin Celery wrappers of insights' periodic work (beat schedule: servicedesk.settings)."""

from celery import shared_task


@shared_task(acks_late=True)
def insights_rollup() -> int:
    """Recount the recent days and those whose tickets changed (insights.rollup.rollup_run)."""
    from insights.rollup import rollup_run

    return rollup_run()
