"""The problem lifecycle: statuses and the one table of allowed transitions. No ORM."""

from django.db import models

from servicedesk.errors import TransitionNotAllowed


class Status(models.TextChoices):
    NEW = "new", "New"
    INVESTIGATING = "investigating", "Investigating"
    KNOWN_ERROR = "known_error", "Known error"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


ALLOWED = {
    Status.NEW: {Status.INVESTIGATING, Status.KNOWN_ERROR, Status.RESOLVED},
    Status.INVESTIGATING: {Status.KNOWN_ERROR, Status.RESOLVED},
    Status.KNOWN_ERROR: {Status.INVESTIGATING, Status.RESOLVED},
    Status.RESOLVED: {Status.CLOSED, Status.INVESTIGATING},
    Status.CLOSED: set(),
}

OPEN = frozenset({Status.NEW, Status.INVESTIGATING, Status.KNOWN_ERROR})
# A known error stays a known error for the record once it is resolved (its workaround and fix are known).
KNOWN = frozenset({Status.KNOWN_ERROR, Status.RESOLVED, Status.CLOSED})


def check_transition(current: str, to: str) -> None:
    if to not in ALLOWED.get(current, set()):
        allowed = ", ".join(sorted(ALLOWED.get(current, set()))) or "none: it is final"
        target = Status(to).label.lower() if to in Status.values else repr(to)
        raise TransitionNotAllowed(
            f"a problem that is {Status(current).label.lower()} cannot become {target} (allowed: {allowed})",
            field="status",
        )
