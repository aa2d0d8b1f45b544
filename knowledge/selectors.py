"""Reads of the knowledge base with the reader's permission in the query.

Requesters see published articles for everyone; agents (and managers, admins) also agents-only articles and
drafts. Retired articles leave lists and search for everyone; agents can still open one by its address."""

from django.db.models import Prefetch, Q, QuerySet

from knowledge.models import Article, ArticleStatus, Audience, Vote
from knowledge.search import search_any, search_ranked
from servicedesk.models import Service
from servicedesk.roles import is_staff_role


def articles_visible_to(user) -> QuerySet:
    """Every article `user` may open."""
    if user is None or not user.is_authenticated:
        return Article.objects.none()
    if is_staff_role(user):
        return Article.objects.all()
    return Article.objects.filter(status=ArticleStatus.PUBLISHED, audience=Audience.PUBLIC)


def articles_for_list(user, q: str = "") -> QuerySet:
    """What `user` finds in the knowledge base (ranked by `q` when given), in a constant number of queries:
    category joined, linked services in one prefetch."""
    articles = articles_visible_to(user).filter(
        Q(status=ArticleStatus.PUBLISHED) | Q(status=ArticleStatus.DRAFT)
    ).select_related("category").prefetch_related(
        Prefetch("services", queryset=Service.objects.only("id", "name").order_by("name"))
    ).defer("body", "body_html", "search_vector")
    if q and q.strip():
        return search_ranked(articles, q)
    return articles.order_by("category__order", "category__name", "title", "id")


def articles_for_portal_search(user, q: str) -> QuerySet:
    """Published articles `user` may read matching `q`, best first (one query; the category joined, the
    long text left behind)."""
    articles = articles_visible_to(user).filter(status=ArticleStatus.PUBLISHED).select_related("category") \
        .only("id", "title", "slug", "published_at", "category__name", "audience", "status")
    return search_ranked(articles, q)


def article_for_reader(user, slug: str):
    """The article `user` may open at this address, or None."""
    return articles_visible_to(user).select_related("category", "author").prefetch_related("services") \
        .filter(slug=slug).first()


def vote_of(user, article) -> Vote | None:
    return Vote.objects.filter(article=article, user=user).first()


def articles_for_editors(user, *, q: str = "", status: str = "", audience: str = "", category_id=None) -> QuerySet:
    """The agents' list of the knowledge base (/agent/kb/): every status, retired included, filtered; one query
    for the rows (category and author joined) and one prefetch of the linked services, whatever the page size."""
    articles = articles_visible_to(user).select_related("category", "author").prefetch_related(
        Prefetch("services", queryset=Service.objects.only("id", "name").order_by("name"))
    ).defer("body", "body_html", "search_vector")
    if status:
        articles = articles.filter(status=status)
    if audience:
        articles = articles.filter(audience=audience)
    if category_id:
        articles = articles.filter(category_id=category_id)
    if q and q.strip():
        return search_ranked(articles, q)
    return articles.order_by("-updated_at", "-id")


def article_for_editor(user, article_id: int):
    """One article for its editor page, or None when `user` may not open it."""
    return articles_visible_to(user).select_related("category", "author").prefetch_related("services") \
        .filter(id=article_id).first()


def articles_suggested_for(user, text: str, *, limit: int = 5) -> list:
    """Published articles `user` may read that share words with `text` (a ticket's title and description),
    best first, in one query."""
    published = articles_visible_to(user).filter(status=ArticleStatus.PUBLISHED).only(
        "id", "title", "slug", "audience", "status", "published_at")
    return list(search_any(published, text)[:limit])


def deflection_figures(*, since=None, until=None) -> dict:
    """How the report page's suggestions did (one query): suggestions opened and left undecided, solved
    without a ticket, raised anyway; `rate` = solved / (solved + raised anyway), None when neither happened."""
    from django.db.models import Count

    from knowledge.models import Deflection, DeflectionOutcome

    rows = Deflection.objects.all()
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    counts = {o: 0 for o in DeflectionOutcome.values}
    counts.update(dict(rows.values_list("outcome").annotate(n=Count("id")).order_by()))
    decided = counts["solved"] + counts["submitted"]
    return {**counts, "rate": counts["solved"] / decided if decided else None}
