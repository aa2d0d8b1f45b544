"""Kernel read paths with permission built into the query."""

from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet

from servicedesk.models import Attachment, TimelineEntry
from servicedesk.roles import is_staff_role


def timeline_visible_to(ticket, user) -> QuerySet[TimelineEntry]:
    """A ticket's timeline as this user may see it: requesters never get internal entries."""
    qs = TimelineEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(ticket), object_id=ticket.pk
    ).select_related("author")
    if not is_staff_role(user):
        qs = qs.filter(internal=False)
    return qs.order_by("created_at", "id")


def attachments_visible_to(ticket, user) -> QuerySet[Attachment]:
    qs = Attachment.objects.filter(content_type=ContentType.objects.get_for_model(ticket), object_id=ticket.pk)
    if not is_staff_role(user):
        qs = qs.filter(internal=False)
    return qs.select_related("uploaded_by")
