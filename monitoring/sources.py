"""Event sources and their tokens. A token is shown once, when it is issued; the database keeps its SHA-256
(a token is 256 random bits, so a fast hash is enough: there is nothing to guess) and its last characters."""

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from monitoring.models import EventSource
from servicedesk.errors import InvalidInput
from servicedesk.services import audit_record

TOKEN_PREFIX = "sdev_"  # noqa: S105 - a prefix that makes leaked tokens easy to recognise, not a secret


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def event_source_for_token(token: str | None) -> EventSource | None:
    """The enabled source this token belongs to, else None (one indexed lookup)."""
    token = (token or "").strip()
    if not token:
        return None
    return (EventSource.objects.select_related("default_service", "default_configuration_item")
            .filter(token_hash=token_digest(token), enabled=True).first())


@transaction.atomic
def event_source_create(*, name: str, kind: str = EventSource.Kind.GENERIC, actor=None,
                        **fields) -> tuple[EventSource, str]:
    """A new source and its token (shown once). `fields`: any other EventSource field (default_service...)."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("name: give the source a name", field="name")
    if kind not in EventSource.Kind.values:
        raise InvalidInput(f"kind: give one of {', '.join(EventSource.Kind.values)}", field="kind")
    if EventSource.objects.filter(name=name).exists():
        raise InvalidInput(f"name: a source named {name!r} exists already", field="name")
    token = _new_token()
    source = EventSource.objects.create(name=name, kind=kind, token_hash=token_digest(token),
                                        token_hint=token[-4:], **fields)
    audit_record(actor=actor, action="event_source.created", obj=source, changes={"kind": kind})
    return source, token


@transaction.atomic
def event_source_rotate(*, source_id: int, actor=None) -> tuple[EventSource, str]:
    """Issue a new token for the source; the old one stops working at once."""
    source = EventSource.objects.select_for_update().get(id=source_id)
    token = _new_token()
    source.token_hash, source.token_hint, source.token_rotated_at = token_digest(token), token[-4:], timezone.now()
    source.save(update_fields=["token_hash", "token_hint", "token_rotated_at"])
    audit_record(actor=actor, action="event_source.token_rotated", obj=source, changes={})
    return source, token
