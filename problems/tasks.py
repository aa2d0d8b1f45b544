"""Celery side of problem management. Importing this module registers the outbox handler
"problems.resolve_incidents" (every worker imports each app's tasks module) and the detector's beat task."""

from celery import shared_task
from django.contrib.auth import get_user_model

from problems.services import RESOLVE_INCIDENTS, resolve_linked_incidents
from servicedesk.outbox import outbox_handler


@outbox_handler(RESOLVE_INCIDENTS, max_attempts=5)
def _resolve_incidents(message):
    """A resolved problem's linked open incidents, each resolved through incidents' services."""
    payload = message.payload
    actor = get_user_model().objects.filter(id=payload.get("actor_id")).first()
    resolve_linked_incidents(problem_id=payload["problem_id"], actor=actor)
    return None


@shared_task(acks_late=True)
def problems_detect() -> dict:
    """Beat (every DetectionSettings.interval_minutes, entry "problems-detect"): propose problem candidates
    from clusters of recurring incidents."""
    from problems.detection import candidates_detect

    return candidates_detect().as_dict()
