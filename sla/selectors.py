"""Reads of the SLA configuration, for the API, admin and (later) the clocks."""

from django.db.models import Prefetch

from sla.models import BusinessCalendar, EscalationStep, SlaPolicy

# Written by hand: it runs at every change of every ticket, and the ORM took longer to compile the
# equivalent query (an EXISTS and two subqueries) than PostgreSQL took to run it (bench/bench_sla_sweep.py).
_POLICY_SQL = """
    SELECT p.*, t.first_response_minutes, t.resolution_minutes,
           c.name AS calendar_name, c.timezone AS calendar_timezone, c.is_24x7 AS calendar_is_24x7,
           c.revision AS calendar_revision, c.created_at AS calendar_created_at
      FROM sla_slapolicy p
      JOIN sla_slatarget t ON t.policy_id = p.id AND t.priority = %(priority)s
      JOIN sla_businesscalendar c ON c.id = p.calendar_id
     WHERE p.active AND p.ticket_type = %(ticket_type)s
       AND (p.id = %(policy_id)s
            OR ((p.priority IS NULL OR p.priority = %(priority)s)
                AND (p.service_id IS NULL OR p.service_id = %(service_id)s)
                AND (p.organisation_id IS NULL OR p.organisation_id = %(organisation_id)s)))
     ORDER BY CASE WHEN p.id = %(policy_id)s THEN 0 ELSE 1 END, p."order", p.id
     LIMIT 1
"""


def policy_for(ticket_type: str, priority: int, service_id: int | None = None,
               organisation_id: int | None = None, policy_id: int | None = None) -> SlaPolicy | None:
    """The policy for a ticket, in one query: the first active policy by `order` whose ticket type is the
    ticket's, whose priority, service and organisation are the ticket's or left empty (empty matches
    anything; a ticket without a service matches only policies that leave it empty), and that has a target
    for the ticket's priority (a policy without one does not cover it). The policy carries that target as
    `first_response_minutes` and `resolution_minutes`, and its calendar's own fields without a query.
    `policy_id`: a policy the ticket names itself (a catalog item's own); it wins over the matching rules while
    it is active, of the ticket's type and has a target for the priority, else the rules decide."""
    rows = list(SlaPolicy.objects.raw(_POLICY_SQL, {
        "ticket_type": ticket_type, "priority": priority, "service_id": service_id,
        "organisation_id": organisation_id, "policy_id": policy_id,
    }))
    if not rows:
        return None
    policy = rows[0]
    policy.calendar = BusinessCalendar(
        id=policy.calendar_id, name=policy.calendar_name, timezone=policy.calendar_timezone,
        is_24x7=policy.calendar_is_24x7, revision=policy.calendar_revision, created_at=policy.calendar_created_at)
    return policy


def policies_for_api():
    return SlaPolicy.objects.select_related("calendar", "service", "organisation").prefetch_related(
        "targets",
        Prefetch("escalation_steps", queryset=EscalationStep.objects.select_related("team", "webhook")),
    ).order_by("order", "id")


def calendars_for_api():
    return BusinessCalendar.objects.prefetch_related("intervals", "holidays").order_by("name")
