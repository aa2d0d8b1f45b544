"""Problems' part in retention (servicedesk.retention): closed problems go RETENTION_TICKETS_DAYS after
`closed_at` (problem_closed_idx), before incidents (order 40).

Two holds, each a NOT EXISTS in the batch's query (no row is read to be kept):

- "problem-links": an incident linked to a problem stays as long as the problem does, so a kept problem never
  loses the incidents it explains. When the problem goes, its links go with it (cascade) and the incidents follow
  by their own closing date.
- "problem-live-incidents": a closed problem stays while any incident it explains is not closed or cancelled
  (still open, or resolved and so still able to reopen), so an incident being worked never loses its problem.

A closed problem that became a known error is kept for ever: problems/states.py keeps it "for the record" and the
known-error search (problems/search.py) still finds it."""

from django.db.models import Exists, OuterRef

from incidents.states import FINAL as INCIDENT_FINAL
from problems.models import Problem, ProblemIncident
from problems.states import Status
from servicedesk.registry import RetentionHold, TicketRetention, registry


def _due(cutoff):
    return Problem.objects.filter(status=Status.CLOSED, closed_at__lt=cutoff, known_error_at__isnull=True)


def _keep_linked(kind: str, qs):
    return qs.exclude(Exists(ProblemIncident.objects.filter(incident_id=OuterRef("pk"))))


def _keep_while_incidents_live(kind: str, qs):
    """Through problem_incident_once (problem, incident) and the incident's primary key."""
    return qs.exclude(Exists(ProblemIncident.objects.filter(problem_id=OuterRef("pk"))
                             .exclude(incident__status__in=INCIDENT_FINAL)))


def register() -> None:
    registry.ticket_retention(TicketRetention(kind="problem", model=Problem, due=_due, order=40))
    registry.retention_hold(RetentionHold(key="problem-links", ticket_kinds=("incident",), narrow=_keep_linked))
    registry.retention_hold(RetentionHold(key="problem-live-incidents", ticket_kinds=("problem",),
                                          narrow=_keep_while_incidents_live))
