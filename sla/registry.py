"""Ticket types that SLA policies can apply to.

`sla` imports no ticket app: each ticket app registers its type here from its own plugin module
(`sla.registry.ticket_type("incident", "Incident")`), and a policy's `ticket_type` names one of them. While no
app has registered a type, any well-formed key is accepted, so configuration can be written before its app.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.core.exceptions import ValidationError

KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

_types: dict[str, str] = {}
_adapters: dict[str, "TicketAdapter"] = {}
_statuses: dict[str, frozenset[str]] = {}


@dataclass(frozen=True)
class TicketFacts:
    """What the clocks need to know of a ticket, handed to sla.clocks.clocks_sync by the ticket's services.

    `status` is the ticket's status, with the hold reason after a colon when it has one
    ("on_hold:awaiting_caller"), matched against a policy's pause statuses; `status_label` is how people read
    it ("On hold (awaiting caller)"), written as the reason of a pause."""

    ticket_type: str
    ticket_id: int
    priority: int
    status: str
    status_label: str
    created_at: datetime
    team_id: int | None = None
    service_id: int | None = None
    organisation_id: int | None = None
    policy_id: int | None = None  # a policy the ticket names itself (a catalog item's), before the matching rules
    responded: bool = False  # the first response was given: the first response clock stops
    resolved: bool = False  # resolved (or closed): the resolution and OLA clocks stop
    cancelled: bool = False  # cancelled: every running clock is cancelled


@dataclass(frozen=True)
class TicketInfo:
    """How escalations name a ticket and reach its people."""

    number: str
    title: str
    priority: int
    url: str  # the agent's page of the ticket, site-relative
    team_id: int | None
    team_name: str
    assignee_email: str
    team_lead_email: str


class TicketAdapter(Protocol):
    """What `sla` asks of a ticket app, registered with `ticket_type(..., adapter=...)`. Escalations that change
    the ticket go through the ticket app's own services, which then sync the clocks."""

    def info(self, ticket_id: int) -> TicketInfo | None: ...

    # Optional: `infos(ticket_ids) -> {ticket_id: TicketInfo}` names many tickets in one query (reports list
    # pages of them); without it they are named one `info()` call at a time.

    def note(self, ticket_id: int, body: str, data: dict) -> None:
        """Write an internal line on the ticket's timeline (a warning or a breach)."""

    def reassign(self, ticket_id: int, team_id: int, reason: str) -> None: ...

    def raise_priority(self, ticket_id: int, reason: str) -> None: ...

    def resync(self, ticket_id: int, *, reason: str, recount: bool = False) -> None:
        """Lock the ticket and call sla.clocks.clocks_sync with its facts (a policy or calendar was saved)."""


class TicketModelAdapter:
    """The part of a TicketAdapter that is the same for every ticket model with the kernel's ticket shape
    (number, title, priority, assignment_group with its lead, assignee): naming tickets, writing the timeline
    line, re-syncing under the row's lock. A ticket app subclasses it, sets `model`, and gives `url(ticket)`,
    `sync(ticket, reason=, recount=)` (its own clock sync), `reassign` and `raise_priority`."""

    model = None

    def url(self, ticket) -> str:
        raise NotImplementedError

    def sync(self, ticket, *, reason: str, recount: bool) -> None:
        raise NotImplementedError

    def info(self, ticket_id: int) -> TicketInfo | None:
        return self.infos([ticket_id]).get(ticket_id)

    def infos(self, ticket_ids) -> dict[int, TicketInfo]:
        """Many tickets in one query (SLA reports list pages of breached tickets)."""
        rows = self.model.objects.select_related("assignee", "assignment_group__lead").filter(id__in=list(ticket_ids))
        return {ticket.id: self._info(ticket) for ticket in rows}

    def _info(self, ticket) -> TicketInfo:
        group = ticket.assignment_group
        return TicketInfo(
            number=ticket.number, title=ticket.title, priority=ticket.priority, url=self.url(ticket),
            team_id=group.id if group else None, team_name=group.name if group else "",
            assignee_email=ticket.assignee.email if ticket.assignee_id else "",
            team_lead_email=group.lead.email if group and group.lead_id else "",
        )

    def note(self, ticket_id: int, body: str, data: dict) -> None:
        from servicedesk.models import TimelineEntry
        from servicedesk.services import timeline_add

        timeline_add(ticket=self.model(id=ticket_id), kind=TimelineEntry.Kind.SYSTEM, body=body, internal=True,
                     data=data)

    def resync(self, ticket_id: int, *, reason: str, recount: bool = False) -> None:
        from django.db import transaction

        with transaction.atomic():
            ticket = self.model.objects.select_for_update(of=("self",)).select_related(
                "requester__profile").filter(id=ticket_id).first()
            if ticket is not None:
                self.sync(ticket, reason=reason, recount=recount)


def ticket_type(key: str, label: str, adapter: TicketAdapter | None = None, statuses=()) -> None:
    """Register a ticket type. `statuses` are what its facts' `status` may be ("on_hold",
    "on_hold:awaiting_caller", ...): a policy's pause statuses are checked against them."""
    if not KEY.match(key):
        raise ValueError(f"SLA ticket type {key!r}: use lower-case letters, digits and _ (e.g. 'incident')")
    if key in _types and _types[key] != label:
        raise ValueError(f"SLA ticket type {key!r} is already registered as {_types[key]!r}")
    _types[key] = label
    if adapter is not None:
        _adapters[key] = adapter
    if statuses:
        _statuses[key] = frozenset(statuses)


def pause_statuses_known(key: str) -> frozenset[str]:
    """The statuses a ticket type registered (empty: not known yet, anything well-formed is accepted)."""
    return _statuses.get(key, frozenset())


def adapter_for(key: str) -> TicketAdapter | None:
    return _adapters.get(key)


def ticket_types() -> dict[str, str]:
    """Registered ticket types, key -> label."""
    return dict(sorted(_types.items()))


def validate_ticket_type(value: str) -> None:
    if not isinstance(value, str) or not KEY.match(value):
        raise ValidationError("Use a ticket type key: lower-case letters, digits and _, e.g. incident.")
    known = ticket_types()
    if known and value not in known:
        raise ValidationError(f"Unknown ticket type {value!r}; known: {', '.join(known)}.")
