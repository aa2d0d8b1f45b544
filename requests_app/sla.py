"""Service requests and their SLA clocks: the facts every request service hands to sla.clocks, and the adapter
through which SLA escalations read and change a request. Registered with sla.registry in requests_app.plugin.

First response: fulfilment starting counts as the response (a request that needs no approval goes straight
to fulfilment, so its first-response clock is met at once); the resolution clock runs until the request is
fulfilled or closed. Priority is the request's own (4 unless set). The item's own SLA policy, when it names one
(active, for service requests, with a target for the priority), is used before the policies' matching rules.
"""

from django.urls import reverse

from requests_app.models import ServiceRequest
from requests_app.states import Status
from servicedesk.models import Profile
from sla.clocks import clocks_delete, clocks_sync
from sla.registry import TicketFacts, TicketModelAdapter

TICKET_TYPE = "request"
NOT_STARTED = frozenset({Status.SUBMITTED, Status.PENDING_APPROVAL, Status.APPROVED})


def clocks_drop_with_request(sender, instance, **kwargs) -> None:
    """An erased request takes its clocks with it (connected to post_delete in requests_app.plugin)."""
    from servicedesk.retention import retiring

    if retiring(TICKET_TYPE):  # retention removed the whole batch's clocks already (sla.retention)
        return
    clocks_delete(TICKET_TYPE, [instance.pk])


def request_facts(request: ServiceRequest) -> TicketFacts:
    try:
        organisation_id = request.requester.profile.organisation_id
    except Profile.DoesNotExist:
        organisation_id = None
    return TicketFacts(
        ticket_type=TICKET_TYPE, ticket_id=request.id, priority=request.priority, status=request.status,
        status_label=request.get_status_display(), created_at=request.created_at,
        team_id=request.assignment_group_id, organisation_id=organisation_id,
        policy_id=request.item.sla_policy_id,
        responded=request.status not in NOT_STARTED,
        resolved=request.status in (Status.FULFILLED, Status.CLOSED, Status.REJECTED),
        cancelled=request.status == Status.CANCELLED,
    )


def request_sla_sync(request: ServiceRequest, *, now=None, reason: str = "", recount: bool = False) -> None:
    """Move the request's clocks after a change (inside the service's transaction) and keep `sla_due_at`."""
    summary = clocks_sync(request_facts(request), now=now, reason=reason, recount=recount)
    if request.sla_due_at != summary.due_at:
        ServiceRequest.objects.filter(id=request.id).update(sla_due_at=summary.due_at)
        request.sla_due_at = summary.due_at


class RequestSlaAdapter(TicketModelAdapter):
    """What SLA escalations ask of a service request (sla.registry.TicketAdapter)."""

    model = ServiceRequest

    def url(self, request) -> str:
        return reverse("agent:request", kwargs={"number": request.number})

    def sync(self, request, *, reason: str, recount: bool) -> None:
        request_sla_sync(request, reason=reason, recount=recount)

    def reassign(self, ticket_id: int, team_id: int, reason: str) -> None:
        from requests_app.services import request_assign
        from servicedesk.models import Team

        request_assign(request_id=ticket_id, actor=None, assignment_group=Team.objects.get(id=team_id),
                       reason=reason)

    def raise_priority(self, ticket_id: int, reason: str) -> None:
        from requests_app.services import request_priority_raise

        request_priority_raise(request_id=ticket_id, actor=None, reason=reason)
