from celery import shared_task

from incidents import services


@shared_task(acks_late=True)
def incidents_auto_close() -> int:
    """Beat: close resolved incidents past the configured number of days."""
    return services.incidents_auto_close()
