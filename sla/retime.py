"""Saved configuration reaches the open tickets: after a policy or a calendar is saved (admin, a holiday
import), the active clocks it governs are re-timed as the what-if preview showed (sla.whatif): elapsed
business time counted again on the calendar as it is now, the policy's new targets, new deadlines.

Each ticket is re-synced through its ticket app's adapter (`resync`), so the ticket's own lock is taken, a
policy that no longer covers it is noticed, and its `sla_due_at` follows. The work is an outbox message
("sla.retime") written in the admin's transaction: it runs once the save commits, in batches of BATCH clocks,
each batch re-queueing the rest, so a policy with thousands of open tickets never holds one long transaction.
"""

from servicedesk.outbox import outbox_enqueue, outbox_handler
from sla.models import ACTIVE_CLOCK_STATES, ClockKind, SlaClock
from sla.registry import adapter_for

BATCH = 200


def retime_enqueue(*, policy_id: int | None = None, calendar_id: int | None = None, ola_team_id: int | None = None,
                   reason: str) -> None:
    """Queue the re-timing of the clocks of a saved policy, calendar or team's OLA targets (call it in the
    saving transaction)."""
    outbox_enqueue("sla.retime", {"policy_id": policy_id, "calendar_id": calendar_id, "ola_team_id": ola_team_id,
                                  "reason": reason, "after": 0})


def clocks_retime(*, policy_id: int | None = None, calendar_id: int | None = None, ola_team_id: int | None = None,
                  reason: str, after: int = 0, batch: int = BATCH) -> tuple[int, int | None]:
    """Re-sync the tickets of the next `batch` active clocks after id `after`; returns (tickets re-synced,
    the id to continue after, or None when done)."""
    clocks = SlaClock.objects.filter(state__in=ACTIVE_CLOCK_STATES, id__gt=after)
    if policy_id is not None:
        clocks = clocks.filter(policy_id=policy_id)
    if calendar_id is not None:
        clocks = clocks.filter(calendar_id=calendar_id)
    if ola_team_id is not None:
        clocks = clocks.filter(kind=ClockKind.OLA, team_id=ola_team_id)
    rows = list(clocks.order_by("id").values_list("id", "ticket_type", "ticket_id")[:batch])
    tickets = dict.fromkeys((ticket_type, ticket_id) for _, ticket_type, ticket_id in rows)
    for ticket_type, ticket_id in tickets:
        adapter = adapter_for(ticket_type)
        if adapter is not None:
            adapter.resync(ticket_id, reason=reason, recount=True)
    return len(tickets), (rows[-1][0] if len(rows) == batch else None)


@outbox_handler("sla.retime", max_attempts=5, queue="sla")
def _retime(message):
    payload = message.payload
    _, cursor = clocks_retime(policy_id=payload.get("policy_id"), calendar_id=payload.get("calendar_id"),
                              ola_team_id=payload.get("ola_team_id"), reason=payload["reason"],
                              after=payload.get("after", 0))
    if cursor is not None:
        outbox_enqueue("sla.retime", {**payload, "after": cursor})
    return None
