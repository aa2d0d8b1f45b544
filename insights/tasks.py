"""Celery entry points of insights: thin wrappers (beat schedule in settings.CELERY_BEAT_SCHEDULE)."""

from celery import shared_task


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
