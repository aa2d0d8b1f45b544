"""The service request lifecycle: statuses and the one table of allowed transitions. No ORM."""

from django.db import models

from servicedesk.errors import TransitionNotAllowed


class Status(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    IN_FULFILMENT = "in_fulfilment", "In fulfilment"
    FULFILLED = "fulfilled", "Fulfilled"
    FAILED = "failed", "Failed"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled"


ALLOWED = {
    Status.SUBMITTED: {Status.PENDING_APPROVAL, Status.IN_FULFILMENT, Status.CANCELLED},
    Status.PENDING_APPROVAL: {Status.APPROVED, Status.REJECTED, Status.CANCELLED},
    Status.APPROVED: {Status.IN_FULFILMENT, Status.CANCELLED},
    Status.REJECTED: {Status.CLOSED},
    Status.IN_FULFILMENT: {Status.FULFILLED, Status.FAILED, Status.CANCELLED},
    Status.FAILED: {Status.IN_FULFILMENT, Status.CANCELLED},
    # Back to the item's team when the requester says it is not done (requests_app.services.request_reopen,
    # within REQUEST_REOPEN_DAYS of fulfilment).
    Status.FULFILLED: {Status.CLOSED, Status.IN_FULFILMENT},
    Status.CLOSED: set(),
    Status.CANCELLED: set(),
}

# Someone still has to act: team queues and the SLA resolution clock run.
# Sorted, as the open-request partial indexes' predicates are (models: sorted(OPEN)): a set's order changes
# with each process's string hashing, and PostgreSQL matches a WHERE clause to a partial index's predicate
# only when the IN list is in the same order (incidents.states.OPEN says more).
OPEN = tuple(sorted({Status.SUBMITTED, Status.PENDING_APPROVAL, Status.APPROVED, Status.IN_FULFILMENT,
                     Status.FAILED}))
FINAL = frozenset({Status.CLOSED, Status.CANCELLED})


def check_transition(current: str, to: str) -> None:
    if to not in ALLOWED.get(current, set()):
        allowed = ", ".join(sorted(ALLOWED.get(current, set()))) or "none: it is final"
        target = Status(to).label.lower() if to in Status.values else repr(to)
        raise TransitionNotAllowed(
            f"a request that is {Status(current).label.lower()} cannot become {target} (allowed: {allowed})",
            field="status",
        )
