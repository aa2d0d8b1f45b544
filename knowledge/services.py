"""Every write to the knowledge base.

`article_save` is the one path that stores an article's content (article_create, article_update and admin go
through it): it renders the body once (knowledge.rendering), adds an ArticleVersion when the title or body
changed, and refreshes the search document. Publishing and retiring are their own services and leave an audit
row; votes and views change counters with F() expressions, never read-modify-write.
"""

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from knowledge.models import Article, ArticleStatus, ArticleVersion, Audience, Vote
from knowledge.rendering import render_markdown
from knowledge.search import search_refresh
from servicedesk.errors import InvalidInput, StaleVersion, TransitionNotAllowed
from servicedesk.services import audit_record

EDITABLE = ("title", "body", "category", "audience", "slug")


def _unique_slug(title: str, *, exclude_id=None) -> str:
    base = slugify(title)[:180] or "article"
    slug, n = base, 1
    taken = Article.objects.exclude(id=exclude_id)
    while taken.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _check(article: Article) -> None:
    if not (article.title or "").strip():
        raise InvalidInput("title must not be empty", field="title")
    if not (article.body or "").strip():
        raise InvalidInput("body must not be empty", field="body")
    if article.audience not in Audience.values:
        raise InvalidInput(f"audience must be one of {', '.join(Audience.values)}", field="audience")


@transaction.atomic
def article_save(*, article: Article, actor, note: str = "") -> Article:
    """Store `article` as edited (new or changed): render, version, index. Saving it unchanged adds nothing.
    `note` is kept on the new version (why it was saved, e.g. "Written from INC0001234")."""
    article.title = (article.title or "").strip()
    _check(article)
    if not article.slug:
        article.slug = _unique_slug(article.title, exclude_id=article.id)
    latest = None
    if article.id:
        latest = article.versions.order_by("-number").first()
    changed = latest is None or (latest.title, latest.body) != (article.title, article.body)
    if changed:
        article.body_html = render_markdown(article.body)
        article.version = latest.number + 1 if latest else 1
    if article.id is None and article.author_id is None and actor is not None and actor.is_authenticated:
        article.author = actor
    article.save()
    if changed:
        ArticleVersion.objects.create(article=article, number=article.version, title=article.title,
                                      body=article.body, note=note[:200],
                                      edited_by=actor if actor and actor.is_authenticated else None)
        search_refresh([article.id])
    return article


def article_create(*, title: str, body: str, author, category=None, audience: str = Audience.PUBLIC,
                   services=(), slug: str = "", source_ticket: str = "", note: str = "") -> Article:
    """A new draft (version 1). `source_ticket` names the ticket it was written from (kept on the article, and
    on version 1's note unless `note` says otherwise)."""
    source_ticket = (source_ticket or "").strip().upper()[:16]
    if source_ticket and not note:
        note = f"Written from {source_ticket}"
    with transaction.atomic():
        article = article_save(
            article=Article(title=title, body=body, category=category, audience=audience, slug=slug,
                            author=author, source_ticket=source_ticket),
            actor=author, note=note,
        )
        if services:
            article.services.set(services)
    return article


@transaction.atomic
def article_update(*, article_id: int, actor, version: int | None = None, services=None, note: str = "",
                   **changes) -> Article:
    """Change some of title, body, category, audience, slug (and the linked services). `version`, when given,
    must be the one the editor started from (409 otherwise, naming who saved the newer one and when)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    article = Article.objects.select_for_update().get(id=article_id)
    if version is not None and version != article.version:
        raise StaleVersion(_stale_message(article), field="version")
    for name, value in changes.items():
        setattr(article, name, value)
    article = article_save(article=article, actor=actor, note=note)
    if services is not None:
        article.services.set(services)
    return article


def _stale_message(article: Article) -> str:
    latest = article.versions.select_related("edited_by").order_by("-number").first()
    who = ""
    if latest is not None and latest.edited_by is not None:
        who = f" by {latest.edited_by.get_full_name() or latest.edited_by.username}"
    when = f" at {timezone.localtime(latest.created_at):%H:%M}" if latest is not None else ""
    return (f"the article was changed{who}{when} since you opened it (now version {article.version}); "
            "reload it and apply your change again")


def _set_status(article_id: int, actor, to: str, allowed_from: set[str]) -> Article:
    article = Article.objects.select_for_update().get(id=article_id)
    if article.status == to:
        return article  # a repeated click changes nothing
    if article.status not in allowed_from:
        raise TransitionNotAllowed(f"a {article.get_status_display().lower()} article cannot be {to}",
                                   field="status")
    before = article.status
    article.status = to
    fields = ["status", "updated_at"]
    if to == ArticleStatus.PUBLISHED:
        article.published_at = timezone.now()
        fields.append("published_at")
    article.save(update_fields=fields)
    audit_record(actor=actor, action=f"article.{to}", obj=article,
                 changes={"before": {"status": before}, "after": {"status": to}})
    return article


@transaction.atomic
def article_publish(*, article_id: int, actor) -> Article:
    """Draft or retired -> published: readers can find it (public ones in the portal too)."""
    return _set_status(article_id, actor, ArticleStatus.PUBLISHED, {ArticleStatus.DRAFT, ArticleStatus.RETIRED})


@transaction.atomic
def article_retire(*, article_id: int, actor) -> Article:
    """Published or draft -> retired: out of lists and search; agents can still open it."""
    return _set_status(article_id, actor, ArticleStatus.RETIRED, {ArticleStatus.PUBLISHED, ArticleStatus.DRAFT})


class AlreadyVoted(TransitionNotAllowed):
    """409: one vote per person per article."""


def article_vote(*, article_id: int, user, helpful: bool) -> Vote:
    """Record `user`'s answer to "Was this helpful?". A second vote on the same article is refused
    (AlreadyVoted, 409): the unique constraint decides, so two simultaneous clicks count once."""
    if not isinstance(helpful, bool):
        raise InvalidInput("helpful must be true or false", field="helpful")
    try:
        with transaction.atomic():
            vote = Vote.objects.create(article_id=article_id, user=user, helpful=helpful)
            counter = "helpful_count" if helpful else "not_helpful_count"
            Article.objects.filter(id=article_id).update(**{counter: F(counter) + 1})
    except IntegrityError:
        raise AlreadyVoted("you have already voted on this article", field="helpful") from None
    return vote


def article_viewed(*, article_id: int) -> None:
    """Count one reading of the article, in the database (concurrent readers never lose a count); does not
    touch updated_at."""
    Article.objects.filter(id=article_id).update(view_count=F("view_count") + 1)


# --- deflection: suggestions on the report page -----------------------------------------------------------

# How long after opening a suggested article a ticket raised by the same person counts as "raised anyway".
DEFLECTION_WINDOW_MINUTES = 60


@transaction.atomic
def deflection_open(*, user, article_id: int, query: str = "", now=None):
    """The person opened an article suggested while they reported an issue."""
    from knowledge.models import Deflection

    now = now or timezone.now()
    return Deflection.objects.create(user=user, article_id=article_id, query=(query or "").strip()[:200],
                                     created_at=now, updated_at=now)


@transaction.atomic
def deflection_solve(*, user, article_id: int, query: str = "", now=None):
    """"This solved it": the person leaves without a ticket. Turns their latest open suggestion of this
    article into a deflection, or records one (they may press it without opening the article)."""
    from knowledge.models import Deflection, DeflectionOutcome

    now = now or timezone.now()
    opened = (Deflection.objects.select_for_update()
              .filter(user=user, article_id=article_id, outcome=DeflectionOutcome.OPENED)
              .order_by("-created_at", "-id").first())
    if opened is not None:
        opened.outcome, opened.updated_at = DeflectionOutcome.SOLVED, now
        if query and not opened.query:
            opened.query = query.strip()[:200]
        opened.save(update_fields=["outcome", "updated_at", "query"])
        deflection = opened
    else:
        deflection = Deflection.objects.create(user=user, article_id=article_id, query=(query or "").strip()[:200],
                                               outcome=DeflectionOutcome.SOLVED, created_at=now, updated_at=now)
    audit_record(actor=user, action="kb.deflection", obj=deflection.article,
                 changes={"query": deflection.query})
    return deflection


def deflections_submitted(*, user, number: str, now=None) -> int:
    """The person raised `number` anyway: their suggestions opened in the last hour and not marked solved
    count as not enough. One UPDATE; runs in the caller's transaction (kernel signal portal_ticket_raised)."""
    from datetime import timedelta

    from knowledge.models import Deflection, DeflectionOutcome

    now = now or timezone.now()
    return Deflection.objects.filter(
        user=user, outcome=DeflectionOutcome.OPENED,
        created_at__gte=now - timedelta(minutes=DEFLECTION_WINDOW_MINUTES),
    ).update(outcome=DeflectionOutcome.SUBMITTED, ticket_number=number[:16], updated_at=now)


def on_portal_ticket_raised(sender, *, user, number, **kwargs) -> None:
    deflections_submitted(user=user, number=number)
