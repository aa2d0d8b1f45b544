"""Full-text search over incidents: PostgreSQL tsvector of title (A), description (B) and the
comments and notes of the timeline (C), stored on the row and kept fresh by the services.
The local SQLite run falls back to substring matching."""

import re

from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.search import SearchQuery
from django.db import connection
from django.db.models import Q, QuerySet

NUMBER = re.compile(r"^\s*(INC)?0*(\d{1,9})\s*$", re.IGNORECASE)
CONFIG = "english"


def search_refresh(incident_ids) -> None:
    """Recompute the stored search document of these incidents in one statement."""
    ids = list(incident_ids)
    if not ids or connection.vendor != "postgresql":
        return
    from incidents.models import Incident

    content_type = ContentType.objects.get_for_model(Incident)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE incidents_incident AS i SET search_vector =
                setweight(to_tsvector('{CONFIG}', coalesce(i.title, '')), 'A')
             || setweight(to_tsvector('{CONFIG}', coalesce(i.description, '')), 'B')
             || setweight(to_tsvector('{CONFIG}', coalesce((
                    SELECT string_agg(t.body, ' ') FROM servicedesk_timelineentry t
                    WHERE t.content_type_id = %s AND t.object_id = i.id AND t.kind IN ('comment', 'note')
                ), '')), 'C')
            WHERE i.id = ANY(%s)
            """,
            [content_type.id, ids],
        )


def number_of(text: str) -> str | None:
    """'INC0001042', 'inc1042' or '1042' -> 'INC0001042'; anything else -> None."""
    match = NUMBER.match(text or "")
    if not match or (match.group(1) is None and len(match.group(2)) < 4):
        return None
    return f"INC{int(match.group(2)):07d}"


def search_filter(queryset: QuerySet, text: str, *, include_internal: bool) -> QuerySet:
    """Narrow a queryset to incidents matching `text`. Requesters (include_internal=False) search title and
    description only, so no word of an internal note can be inferred from their results."""
    text = (text or "").strip()
    if not text:
        return queryset
    number = number_of(text)
    if number:
        return queryset.filter(number=number)
    if connection.vendor != "postgresql" or not include_internal:
        return queryset.filter(Q(title__icontains=text) | Q(description__icontains=text))
    return queryset.filter(search_vector=SearchQuery(text, config=CONFIG, search_type="websearch"))
