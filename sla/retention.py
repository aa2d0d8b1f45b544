"""SLA's part in retention (servicedesk.retention): the clocks of the tickets retention removes go with them, in one
DELETE per batch through sla_clock_ticket_idx (the ticket apps' post_delete signals then find nothing left)."""

from servicedesk.registry import registry
from sla.clocks import clocks_delete


def clocks_retire(kind: str, ticket_ids: list[int]) -> int:
    # SLA ticket types are the registry's ticket kinds ("incident", "request").
    return clocks_delete(kind, ticket_ids)


def register() -> None:
    registry.tickets_retire_hook(clocks_retire)
