"""Problems' part in retention (servicedesk.retention): closed problems go RETENTION_TICKETS_DAYS after
`closed_at` (problem_closed_idx), before incidents (order 40), and an incident linked to a problem stays as long as
the problem does: a kept problem never loses the incidents it explains. When the problem goes, its links go with it
(cascade) and the incidents follow by their own closing date.

A closed problem that became a known error is kept for ever: problems/states.py keeps it "for the record" and the
known-error search (problems/search.py) still finds it."""

from django.db.models import Exists, OuterRef

from problems.models import Problem, ProblemIncident
from problems.states import Status
from servicedesk.registry import RetentionHold, TicketRetention, registry


def _due(cutoff):
    return Problem.objects.filter(status=Status.CLOSED, closed_at__lt=cutoff, known_error_at__isnull=True)


def _keep_linked(kind: str, qs):
    return qs.exclude(Exists(ProblemIncident.objects.filter(incident_id=OuterRef("pk"))))


def register() -> None:
    registry.ticket_retention(TicketRetention(kind="problem", model=Problem, due=_due, order=40))
    registry.retention_hold(RetentionHold(key="problem-links", ticket_kinds=("incident",), narrow=_keep_linked))
