"""Kernel read paths with permission built into the query."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet

from servicedesk.models import Attachment, TimelineEntry
from servicedesk.roles import is_staff_role


def timeline_visible_to(ticket, user, *, public_only: bool = False) -> QuerySet[TimelineEntry]:
    """A ticket's timeline as this user may see it: requesters never get internal entries, and neither does
    anyone on a public view (`public_only`, e.g. the portal page of an agent who raised the ticket)."""
    qs = TimelineEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(ticket), object_id=ticket.pk
    ).select_related("author")
    if public_only or not is_staff_role(user):
        qs = qs.filter(internal=False)
    return qs.order_by("created_at", "id")


def timeline_recent(ticket, user, *, public_only: bool = False, everything: bool = False) -> tuple[list, int]:
    """The ticket's latest `TIMELINE_RECENT_ENTRIES` visible entries (settings), oldest first, and how many
    earlier ones were left out: a ticket page costs the same for a chatty ticket with thousands of entries as
    for a quiet one (one query; a second, the count, only when entries were left out). `everything`: the whole
    timeline (the page's "Show earlier entries")."""
    entries = timeline_visible_to(ticket, user, public_only=public_only)
    limit = settings.TIMELINE_RECENT_ENTRIES
    if everything or not limit:
        return list(entries), 0
    latest = list(entries.order_by("-created_at", "-id")[:limit + 1])
    if len(latest) <= limit:
        return latest[::-1], 0
    return latest[:limit][::-1], entries.count() - limit


# What a requester may read of a public entry's `data`: the lifecycle facts already told in its body and the
# attachment it points at. Everything else (routing, auto-assignment, priorities...) is the desk's business;
# keys not listed here are never shown to requesters, so a new internal fact is hidden by default.
PUBLIC_DATA_KEYS = frozenset({"event", "old", "new", "hold_reason", "reason", "attachment_id"})


def timeline_data_visible_to(entry: TimelineEntry, user, *, public_only: bool = False) -> dict:
    """The entry's `data` as this user may read it: all of it for agents, the allow-listed keys otherwise."""
    data = entry.data or {}
    if not public_only and is_staff_role(user):
        return data
    return {key: value for key, value in data.items() if key in PUBLIC_DATA_KEYS}


def attachments_visible_to(ticket, user, *, public_only: bool = False) -> QuerySet[Attachment]:
    qs = Attachment.objects.filter(content_type=ContentType.objects.get_for_model(ticket), object_id=ticket.pk)
    if public_only or not is_staff_role(user):
        qs = qs.filter(internal=False)
    return qs.select_related("uploaded_by")


def people_names(usernames) -> dict[str, str]:
    """Each username's full name (the username itself when the person has none), in one query. Timeline
    entries store usernames, which never change meaning; people read names."""
    wanted = {name for name in usernames if isinstance(name, str) and name}
    if not wanted:
        return {}
    rows = get_user_model().objects.filter(username__in=wanted).values_list("username", "first_name", "last_name")
    return {username: f"{first} {last}".strip() or username for username, first, last in rows}


def rating_of(ticket):
    """The satisfaction rating of this ticket, or None."""
    from servicedesk.models import Rating

    return Rating.objects.filter(content_type=ContentType.objects.get_for_model(ticket), object_id=ticket.pk).first()
