"""Celery entry points of problem management: thin wrappers around the services."""

from celery import shared_task


@shared_task(acks_late=True)
def problems_detect() -> dict:
    """Beat (every DetectionSettings.interval_minutes, entry "problems-detect"): propose problem candidates
    from clusters of recurring incidents."""
    from problems.detection import candidates_detect

    return candidates_detect().as_dict()
