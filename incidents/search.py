"""Full-text search over incidents, every word of the query required.

PostgreSQL: a tsvector of title (A), description (B) and the comments and notes of the timeline (C), stored
on the row and kept fresh by the services. SQLite (the local run): the same three fields in an FTS5 table
(`incidents_incident_fts`, created by migration 0010 on SQLite only) with the Porter stemmer, refreshed by
the same services through `search_refresh`. Requesters search title and description only, on both.
"""

import re

from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.search import SearchQuery, SearchVector, SearchVectorExact
from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

NUMBER = re.compile(r"^\s*(INC)?0*(\d{1,9})\s*$", re.IGNORECASE)
CONFIG = "english"
FTS_TABLE = "incidents_incident_fts"
# SQLite before 3.32 allows 999 bound parameters per statement; stay under it whatever the version.
FTS_BATCH = 500


def search_refresh(incident_ids) -> None:
    """Recompute the stored search document of these incidents (one statement on PostgreSQL)."""
    ids = list(incident_ids)
    if not ids:
        return
    from incidents.models import Incident

    content_type = ContentType.objects.get_for_model(Incident)
    if connection.vendor == "postgresql":
        _refresh_postgresql(ids, content_type.id)
    elif connection.vendor == "sqlite":
        _refresh_sqlite(ids, content_type.id)


def _refresh_postgresql(ids: list[int], content_type_id: int) -> None:
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
            [content_type_id, ids],
        )


def _refresh_sqlite(ids: list[int], content_type_id: int) -> None:
    with connection.cursor() as cursor:
        for start in range(0, len(ids), FTS_BATCH):
            batch = ids[start:start + FTS_BATCH]
            marks = ", ".join(["%s"] * len(batch))
            # An FTS5 row cannot be updated in place by a join: replace it.
            cursor.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid IN ({marks})", batch)
            cursor.execute(
                f"""
                INSERT INTO {FTS_TABLE} (rowid, title, description, comments)
                SELECT i.id, coalesce(i.title, ''), coalesce(i.description, ''), coalesce((
                    SELECT group_concat(t.body, ' ') FROM servicedesk_timelineentry t
                    WHERE t.content_type_id = %s AND t.object_id = i.id AND t.kind IN ('comment', 'note')
                ), '')
                FROM incidents_incident i WHERE i.id IN ({marks})
                """,
                [content_type_id, *batch],
            )


def search_forget(sender, instance, **kwargs) -> None:
    """A deleted incident (data-protection erasure) leaves no words behind: on PostgreSQL its tsvector went
    with its row; the SQLite FTS5 table is separate, so its row goes here (post_delete, see incidents.plugin)."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid = %s", [instance.pk])


def number_of(text: str) -> str | None:
    """'INC0001042', 'inc1042' or '1042' -> 'INC0001042'; anything else -> None."""
    match = NUMBER.match(text or "")
    if not match or (match.group(1) is None and len(match.group(2)) < 4):
        return None
    return f"INC{int(match.group(2)):07d}"


# The commonest of PostgreSQL's English stop words: it ignores them in a query, and so does the SQLite path,
# so "printer is jammed" still finds "Printer jammed".
STOP_WORDS = frozenset(
    "a an and are as at be been but by for from has have i in is it its me my no not of on or our so that the "
    "their them then there these they this to was we were what when which who will with you your".split()
)


def fts_query(text: str, *, include_internal: bool) -> str | None:
    """An FTS5 query requiring every word of `text` but stop words (each quoted, so no word is read as an
    operator); None when no word is left. Without internal access only title and description are searched."""
    words = [word for word in re.findall(r"\w+", text.lower()) if word not in STOP_WORDS]
    if not words:
        return None
    every_word = " ".join(f'"{word}"' for word in words)
    return every_word if include_internal else f"{{title description}} : ({every_word})"


def search_filter(queryset: QuerySet, text: str, *, include_internal: bool) -> QuerySet:
    """Narrow a queryset to incidents matching every word of `text`. Requesters (include_internal=False)
    search title and description only, so no word of an internal note can be inferred from their results."""
    text = (text or "").strip()
    if not text:
        return queryset
    number = number_of(text)
    if number:
        return queryset.filter(number=number)
    if connection.vendor == "postgresql":
        query = SearchQuery(text, config=CONFIG, search_type="websearch")
        if include_internal:
            return queryset.filter(search_vector=query)
        # Computed on the fly from the two public fields: a requester's queryset holds only their own rows.
        return queryset.filter(SearchVectorExact(SearchVector("title", "description", config=CONFIG), query))
    match = fts_query(text, include_internal=include_internal)
    if match is None:
        return queryset.none()
    return queryset.filter(id__in=RawSQL(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s", [match]))
