"""Full-text search over known errors, ranked: what agents look up when an incident looks familiar.

PostgreSQL: `Problem.search_vector` holds the title (weight A), root cause and workaround (B) and description (C)
as a tsvector, refreshed by problems.services on every change of those fields, behind a GIN index (migration
0002, PostgreSQL only); a query is read as a web search and results are ordered by ts_rank, so a word in the
title outranks the same word in the workaround. SQLite (the local run): the same fields in an FTS5 table
(`problems_problem_fts`, created by migration 0002 on SQLite only) ordered by bm25 with the same weights.
Who may search is decided by the queryset passed in (problems.selectors: agents only), never here.
"""

import re

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import F, FloatField, QuerySet
from django.db.models.expressions import RawSQL

from problems.states import KNOWN

CONFIG = "english"
FTS_TABLE = "problems_problem_fts"
STOP_WORDS = frozenset(
    "a an and are as at be been but by for from has have how i in is it its me my no not of on or our so that the "
    "their them then there these they this to was we were what when which who will with you your".split()
)
SEARCHED = ("title", "description", "root_cause", "workaround")


def search_refresh(problem_ids) -> None:
    """Recompute the stored search document of these problems (one statement)."""
    ids = list(problem_ids)
    if not ids:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE problems_problem SET search_vector =
                    setweight(to_tsvector('{CONFIG}', coalesce(title, '')), 'A')
                 || setweight(to_tsvector('{CONFIG}', coalesce(root_cause, '') || ' ' || coalesce(workaround, '')), 'B')
                 || setweight(to_tsvector('{CONFIG}', coalesce(description, '')), 'C')
                WHERE id = ANY(%s)
                """,
                [ids],
            )
    elif connection.vendor == "sqlite":
        marks = ", ".join(["%s"] * len(ids))
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid IN ({marks})", ids)
            cursor.execute(
                f"INSERT INTO {FTS_TABLE} (rowid, title, cause, description) "
                f"SELECT id, title, root_cause || ' ' || workaround, description FROM problems_problem "
                f"WHERE id IN ({marks})", ids,
            )


def search_forget(sender, instance, **kwargs) -> None:
    """An erased problem leaves no words behind in the SQLite FTS5 table (PostgreSQL's went with the row)."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid = %s", [instance.id])


def _fts_query(text: str) -> str | None:
    words = [word for word in re.findall(r"\w+", text.lower()) if word not in STOP_WORDS]
    return " ".join(f'"{word}"' for word in words) if words else None


def search_ranked(queryset: QuerySet, text: str) -> QuerySet:
    """The problems of `queryset` matching every word of `text`, best first (annotated `rank`)."""
    text = (text or "").strip()
    if not text:
        return queryset
    if connection.vendor == "postgresql":
        query = SearchQuery(text, config=CONFIG, search_type="websearch")
        return (queryset.filter(search_vector=query)
                .annotate(rank=SearchRank(F("search_vector"), query))
                .order_by("-rank", "-created_at", "-id"))
    match = _fts_query(text)
    if match is None:
        return queryset.none()
    rank = RawSQL(
        f"SELECT -bm25({FTS_TABLE}, 10.0, 4.0, 1.0) FROM {FTS_TABLE} "
        f"WHERE {FTS_TABLE} MATCH %s AND {FTS_TABLE}.rowid = problems_problem.id", [match],
        output_field=FloatField(),
    )
    found = RawSQL(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s", [match])
    return queryset.filter(id__in=found).annotate(rank=rank).order_by("-rank", "-created_at", "-id")


def known_errors_search(user, q: str) -> QuerySet:
    """Known errors (status known error, resolved or closed) `user` may see that match `q`, best first. With no
    words, the most recent known errors. Requesters get nothing (problems.selectors.problems_for)."""
    from problems.selectors import problems_for

    known = problems_for(user).filter(status__in=sorted(KNOWN))
    if not (q or "").strip():
        return known.order_by("-known_error_at", "-id")
    return search_ranked(known, q)
