"""Ticket types that SLA policies can apply to.

`sla` imports no ticket app: each ticket app registers its type here from its own plugin module
(`sla.registry.ticket_type("incident", "Incident")`), and a policy's `ticket_type` names one of them. While no
app has registered a type, any well-formed key is accepted, so configuration can be written before its app.
"""

import re

from django.core.exceptions import ValidationError

KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

_types: dict[str, str] = {}


def ticket_type(key: str, label: str) -> None:
    if not KEY.match(key):
        raise ValueError(f"SLA ticket type {key!r}: use lower-case letters, digits and _ (e.g. 'incident')")
    if key in _types and _types[key] != label:
        raise ValueError(f"SLA ticket type {key!r} is already registered as {_types[key]!r}")
    _types[key] = label


def ticket_types() -> dict[str, str]:
    """Registered ticket types, key -> label."""
    return dict(sorted(_types.items()))


def validate_ticket_type(value: str) -> None:
    if not isinstance(value, str) or not KEY.match(value):
        raise ValidationError("Use a ticket type key: lower-case letters, digits and _, e.g. incident.")
    known = ticket_types()
    if known and value not in known:
        raise ValidationError(f"Unknown ticket type {value!r}; known: {', '.join(known)}.")
