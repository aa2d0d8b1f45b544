"""Running outbox messages in the test process the way a worker does (claim, handler, outcome recorded)."""

from datetime import timedelta

from django.utils import timezone

from servicedesk.models import OutboxMessage, TimelineEntry
from servicedesk.outbox import outbox_process


def run_pending(key: str = "request.fulfil", *, later: timedelta = timedelta(0)) -> list:
    """Run each pending message of `key` due by now + `later` (past its backoff when `later` is long)."""
    return [outbox_process(m.id, now=timezone.now() + later)
            for m in OutboxMessage.objects.filter(handler=key, state="pending").order_by("id")]


def mails(template: str) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(handler="email.send", payload__template=template).order_by("id"))


def timeline(request, *, internal: bool | None = None) -> list[str]:
    rows = TimelineEntry.objects.filter(object_id=request.id, content_type__model="servicerequest")
    if internal is not None:
        rows = rows.filter(internal=internal)
    return list(rows.order_by("created_at", "id").values_list("body", flat=True))
