"""The agents' knowledge-base editor in the workspace (/agent/kb/): the list (search, filters, pages), the
editor (new, edit, live preview, publish, retire), version history, "Write an article from this incident" and
"Send as reply" of a suggested article.

Agents are not Django staff, so this is where they write articles. Every agent, manager and admin may write,
publish and retire (docs/knowledge.md says why); requesters get 403 on every URL (agent_required). Writes go
through knowledge.services; tickets are reached only through the kernel's registry (TicketKind), never by
importing a ticket app."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from knowledge import services
from knowledge.forms import ArticleFilter, ArticleForm
from knowledge.models import ArticleStatus, Audience
from knowledge.rendering import render_markdown
from knowledge.selectors import article_for_editor, articles_for_editors
from servicedesk.errors import DomainError, InvalidInput, StaleVersion
from servicedesk.exports import (
    Column,
    export_format,
    export_links,
    export_refused,
    export_response,
    person_name,
    rows_of,
)
from servicedesk.models import Service
from servicedesk.registry import registry
from servicedesk.workspace import agent_render, agent_required

PER_PAGE = 25
PREVIEW_LIMIT = 100_000  # characters: a preview request cannot make the server render a novel


def _article_or_404(request, article_id: int):
    article = article_for_editor(request.user, article_id)
    if article is None:
        raise Http404
    return article


_STATUS = dict(ArticleStatus.choices)
_AUDIENCE = dict(Audience.choices)
EXPORT_COLUMNS = [
    Column("Title", lambda a: a.title, width=48),
    Column("Status", lambda a: _STATUS.get(a.status, a.status), width=10),
    Column("Audience", lambda a: _AUDIENCE.get(a.audience, a.audience), width=12),
    Column("Category", lambda a: a.category.name if a.category else "", width=20),
    Column("Services", lambda a: ", ".join(s.name for s in a.services.all()), width=28),
    Column("Author", lambda a: person_name(a.author), width=20),
    Column("Version", lambda a: a.version, "int"),
    Column("Views", lambda a: a.view_count, "int"),
    Column("Helpful", lambda a: a.helpful_count, "int"),
    Column("Not helpful", lambda a: a.not_helpful_count, "int", width=12),
    Column("Created", lambda a: a.created_at, "datetime"),
    Column("Updated", lambda a: a.updated_at, "datetime"),
    Column("Published", lambda a: a.published_at, "datetime"),
    Column("From ticket", lambda a: a.source_ticket, width=12),
]


@agent_required
def kb_list(request):
    """The editors' list, a page at a time; with ?export=csv|xlsx every article of the same filtered query."""
    try:
        fmt = export_format(request)
    except InvalidInput as exc:
        return export_refused(exc)
    filters = ArticleFilter(request.GET)
    values = filters.values()
    articles = articles_for_editors(
        request.user, q=values["q"], status=values["status"], audience=values["audience"],
        category_id=values["category"].id if values["category"] else None,
    )
    if fmt:
        return export_response(filename=f"knowledge-articles-{timezone.localdate().isoformat()}", fmt=fmt,
                               columns=EXPORT_COLUMNS, rows=rows_of(articles), sheet="Knowledge articles")
    page = Paginator(articles, PER_PAGE).get_page(request.GET.get("page"))
    return agent_render(request, "knowledge/agent_list.html", {
        "filters": filters, "values": values, "page": page, "articles": page.object_list,
        "params": request.GET, "statuses": ArticleStatus.choices, "audiences": Audience.choices,
        "export": export_links(request.path, request.GET),
    }, current_nav="kb:drafts" if values["status"] == ArticleStatus.DRAFT else "kb:list")


def _services_for(article=None):
    """Active services, plus any inactive one the article is already linked to (so saving keeps it)."""
    if article is None:
        return Service.objects.filter(active=True).order_by("name")
    return Service.objects.filter(Q(active=True) | Q(articles=article)).distinct().order_by("name")


def _source_prefill(request) -> tuple[dict, object]:
    """"Write an article from this incident": the editor filled in from the ticket, found through the kernel's
    registry with the agent's permission. Returns (initial, brief) or ({}, None)."""
    kind = registry.kinds.get(request.GET.get("from_kind", ""))
    number = request.GET.get("from", "").strip()
    if kind is None or not number:
        return {}, None
    ticket = kind.find(request.user, number)
    if ticket is None:
        return {}, None
    brief = kind.brief(ticket)
    problem = brief.description.strip() or brief.title
    solution = brief.resolution.strip() or "_Describe the fix, step by step._"
    body = f"## Problem\n\n{problem}\n\n## Solution\n\n{solution}\n"
    return {
        "title": brief.title, "body": body, "services": list(brief.service_ids),
        "source_kind": brief.kind, "source_ticket": brief.number, "audience": Audience.PUBLIC,
    }, brief


def _editor(request, form, *, article=None, status=200, preview_html=None, conflict="", source=None):
    body = form["body"].value() or ""
    if preview_html is None:
        preview_html = render_markdown(body[:PREVIEW_LIMIT]) if body else ""
    return agent_render(request, "knowledge/agent_editor.html", {
        "form": form, "article": article, "preview_html": preview_html, "conflict": conflict, "source": source,
        "audiences": Audience.choices,
    }, current_nav="kb:new" if article is None else "kb:list", status=status)


@agent_required
def kb_new(request):
    if request.method == "POST":
        form = ArticleForm(request.POST)
        if "preview" in request.POST or not form.is_valid():
            return _editor(request, form, status=200 if "preview" in request.POST else 400)
        data = form.cleaned_data
        try:
            article = services.article_create(
                title=data["title"], body=data["body"], author=request.user, category=data["category"],
                audience=data["audience"], services=list(data["services"]), source_ticket=data["source_ticket"],
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            return _editor(request, form, status=exc.status_code)
        messages.success(request, f"{article.number} saved as a draft.")
        return redirect("agent:kb-edit", article_id=article.id)
    initial, source = _source_prefill(request)
    return _editor(request, ArticleForm(initial=initial), source=source)


@agent_required
def kb_edit(request, article_id: int):
    article = _article_or_404(request, article_id)
    if request.method == "POST":
        form = ArticleForm(request.POST, service_queryset=_services_for(article))
        if "preview" in request.POST or not form.is_valid():
            return _editor(request, form, article=article, status=200 if "preview" in request.POST else 400)
        data = form.cleaned_data
        try:
            services.article_update(
                # A form without its version (0) is refused like a stale one: never overwrite blindly.
                article_id=article.id, actor=request.user, version=data["version"] or 0, title=data["title"],
                body=data["body"], category=data["category"], audience=data["audience"],
                services=list(data["services"]),
            )
        except StaleVersion as exc:
            # Nothing saved; the agent's text stays in the form so it can be copied over the newer version.
            return _editor(request, form, article=_article_or_404(request, article_id), status=409,
                           conflict=exc.message)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            return _editor(request, form, article=article, status=exc.status_code)
        messages.success(request, "Article saved.")
        return redirect("agent:kb-edit", article_id=article.id)
    form = ArticleForm(initial={
        "title": article.title, "body": article.body, "category": article.category_id,
        "services": [s.id for s in article.services.all()], "audience": article.audience,
        "version": article.version, "source_ticket": article.source_ticket,
    }, service_queryset=_services_for(article))
    return _editor(request, form, article=article)


@agent_required
@require_POST
def kb_preview(request):
    """The body as readers will see it, rendered and sanitised on the server (htmx swaps it in as you type)."""
    html = render_markdown(request.POST.get("body", "")[:PREVIEW_LIMIT])
    return render(request, "knowledge/_preview.html", {"preview_html": html})


def _status_change(request, article_id: int, change, done: str):
    article = _article_or_404(request, article_id)
    try:
        change(article_id=article.id, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{article.number} {done}.")
    return redirect("agent:kb-edit", article_id=article.id)


@agent_required
@require_POST
def kb_publish(request, article_id: int):
    return _status_change(request, article_id, services.article_publish, "is published")


@agent_required
@require_POST
def kb_retire(request, article_id: int):
    return _status_change(request, article_id, services.article_retire, "is retired")


@agent_required
def kb_history(request, article_id: int):
    article = _article_or_404(request, article_id)
    versions = list(article.versions.select_related("edited_by").order_by("-number"))
    return agent_render(request, "knowledge/agent_history.html", {"article": article, "versions": versions},
                        current_nav="kb:list")


@agent_required
@require_POST
def kb_send(request, article_id: int):
    """"Send as reply": a public reply on the ticket with the article's title and its portal link, through the
    ticket app's own reply service (registered as its TicketKind)."""
    article = _article_or_404(request, article_id)
    kind = registry.kinds.get(request.POST.get("kind", ""))
    ticket = kind.find(request.user, request.POST.get("number", "")) if kind else None
    if ticket is None:
        raise Http404
    brief = kind.brief(ticket)
    if article.status != ArticleStatus.PUBLISHED or article.audience != Audience.PUBLIC:
        messages.error(request, f"{article.number} is not a published article for everyone: "
                                "the requester could not open it.")
        return redirect(brief.url)
    # The site's public address (as in every mail), not whatever host name the agent reached it by.
    link = settings.SITE_URL.rstrip("/") + reverse("portal:kb-article", kwargs={"slug": article.slug})
    body = f"This article should help: {article.title}\n{link}"
    try:
        kind.reply(ticket=ticket, author=request.user, body=body)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Sent {article.number} “{article.title}” to the requester.")
    return redirect(brief.url)

