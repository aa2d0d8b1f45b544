"""Reads of the SLA configuration, for the API, admin and (later) the clocks."""

from django.db.models import Exists, OuterRef, Prefetch, Q

from sla.models import BusinessCalendar, EscalationStep, SlaPolicy, SlaTarget


def policy_for(ticket_type: str, priority: int, service_id: int | None = None,
               organisation_id: int | None = None) -> SlaPolicy | None:
    """The policy for a ticket, in one query: the first active policy by `order` whose ticket type is the
    ticket's, whose priority, service and organisation are the ticket's or left empty (empty matches
    anything), and that has a target for the ticket's priority (a policy without one does not cover it)."""

    def matches(field, value):
        # A ticket without a service matches only policies that leave the service empty.
        return Q(**{f"{field}__isnull": True}) | (Q(**{field: value}) if value is not None else Q(pk__in=[]))

    covers = SlaTarget.objects.filter(policy=OuterRef("pk"), priority=priority)
    return (
        SlaPolicy.objects.filter(active=True, ticket_type=ticket_type)
        .filter(matches("priority", priority), matches("service_id", service_id),
                matches("organisation_id", organisation_id))
        .filter(Exists(covers))
        .select_related("calendar")
        .order_by("order", "id")
        .first()
    )


def policies_for_api():
    return SlaPolicy.objects.select_related("calendar", "service", "organisation").prefetch_related(
        "targets",
        Prefetch("escalation_steps", queryset=EscalationStep.objects.select_related("team", "webhook")),
    ).order_by("order", "id")


def calendars_for_api():
    return BusinessCalendar.objects.prefetch_related("intervals", "holidays").order_by("name")
