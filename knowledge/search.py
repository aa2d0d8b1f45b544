"""Full-text search over knowledge articles, ranked.

PostgreSQL: `Article.search_vector` holds the title (weight A) and body (weight B) as a tsvector, refreshed by
knowledge.services on every save, behind a GIN index (migration 0002, PostgreSQL only); a query is read as a
web search ("vpn -mac", "\"reset password\"") and results are ordered by ts_rank, so a word in the title
outranks the same word in the body. SQLite (the local run): the same two fields in an FTS5 table
(`knowledge_article_fts`, created by migration 0002 on SQLite only), ordered by bm25 with the same 10:1 weight
of title over body. Which articles a person may find is decided by the queryset passed in
(knowledge.selectors), never here.
"""

import re

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import F, FloatField, QuerySet
from django.db.models.expressions import RawSQL

CONFIG = "english"
FTS_TABLE = "knowledge_article_fts"
STOP_WORDS = frozenset(
    "a an and are as at be been but by for from has have how i in is it its me my no not of on or our so that the "
    "their them then there these they this to was we were what when which who will with you your".split()
)


def search_refresh(article_ids) -> None:
    """Recompute the stored search document of these articles (one statement)."""
    ids = list(article_ids)
    if not ids:
        return
    from knowledge.models import Article

    if connection.vendor == "postgresql":
        Article.objects.filter(id__in=ids).update(
            search_vector=SearchVector("title", weight="A", config=CONFIG)
            + SearchVector("body", weight="B", config=CONFIG)
        )
    elif connection.vendor == "sqlite":
        marks = ", ".join(["%s"] * len(ids))
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid IN ({marks})", ids)
            cursor.execute(
                f"INSERT INTO {FTS_TABLE} (rowid, title, body) SELECT id, title, body FROM knowledge_article "
                f"WHERE id IN ({marks})", ids,
            )


def search_forget(sender, instance, **kwargs) -> None:
    """A deleted article leaves no words behind in the SQLite FTS5 table (PostgreSQL's went with the row)."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid = %s", [instance.id])


def fts_query(text: str) -> str | None:
    words = [word for word in re.findall(r"\w+", text.lower()) if word not in STOP_WORDS]
    if not words:
        return None
    return " ".join(f'"{word}"' for word in words)


def search_ranked(queryset: QuerySet, text: str) -> QuerySet:
    """The articles of `queryset` matching `text`, best match first (annotated `rank`)."""
    text = (text or "").strip()
    if not text:
        return queryset
    if connection.vendor == "postgresql":
        query = SearchQuery(text, config=CONFIG, search_type="websearch")
        return (queryset.filter(search_vector=query)
                .annotate(rank=SearchRank(F("search_vector"), query))
                .order_by("-rank", "-published_at", "id"))
    match = fts_query(text)
    if match is None:
        return queryset.none()
    # bm25 is lower for a better match: negate it so "rank" sorts the same way on both databases.
    rank = RawSQL(
        f"SELECT -bm25({FTS_TABLE}, 10.0, 1.0) FROM {FTS_TABLE} "
        f"WHERE {FTS_TABLE} MATCH %s AND {FTS_TABLE}.rowid = knowledge_article.id", [match],
        output_field=FloatField(),
    )
    found = RawSQL(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s", [match])
    return queryset.filter(id__in=found).annotate(rank=rank).order_by("-rank", "-published_at", "id")


def search_any(queryset: QuerySet, text: str, *, words: int = 24) -> QuerySet:
    """The articles of `queryset` sharing any word with `text` (a ticket's title and description), ranked so
    that articles sharing more words, and sharing them in the title, come first. Unlike `search_ranked` (every
    word must match, as a person types a search), a ticket's prose rarely has all its words in one article."""
    terms = []
    for word in re.findall(r"\w+", (text or "").lower()):
        if word not in STOP_WORDS and len(word) > 1 and word not in terms:
            terms.append(word)
    terms = terms[:words]
    if not terms:
        return queryset.none()
    if connection.vendor == "postgresql":
        # Each word parsed on its own (plainto_tsquery stems it and drops stop words), then OR-ed together.
        query = SearchQuery(terms[0], config=CONFIG, search_type="plain")
        for term in terms[1:]:
            query |= SearchQuery(term, config=CONFIG, search_type="plain")
        return (queryset.filter(search_vector=query)
                .annotate(rank=SearchRank(F("search_vector"), query))
                .order_by("-rank", "-published_at", "id"))
    match = " OR ".join(f'"{term}"' for term in terms)
    rank = RawSQL(
        f"SELECT -bm25({FTS_TABLE}, 10.0, 1.0) FROM {FTS_TABLE} "
        f"WHERE {FTS_TABLE} MATCH %s AND {FTS_TABLE}.rowid = knowledge_article.id", [match],
        output_field=FloatField(),
    )
    found = RawSQL(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s", [match])
    return queryset.filter(id__in=found).annotate(rank=rank).order_by("-rank", "-published_at", "id")
