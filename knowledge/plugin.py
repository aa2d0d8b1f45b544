"""What the knowledge base adds to the kernel (servicedesk.registry): the portal's "Knowledge base" tile, a
global-search provider, the API route, demo articles, the workspace's "Knowledge" section (the agents' editor)
and two cards on an incident's agent page ("Suggested articles", "Write an article from this incident"), which
reach the incident only through the kernel's TicketBrief and TicketKind. Imported once by KnowledgeConfig.ready(); nothing
in the kernel imports this app."""

import re
from urllib.parse import urlencode

from django.urls import reverse

from servicedesk.registry import (
    DemoStep,
    NavItem,
    PortalHit,
    PortalSearchProvider,
    PortalTile,
    SearchProvider,
    SearchResults,
    TicketBrief,
    TicketPanel,
    TicketRow,
    WorkspaceSection,
    registry,
)

NUMBER = re.compile(r"^\s*KB0*(\d{1,9})\s*$", re.IGNORECASE)


def _row(article) -> TicketRow:
    return TicketRow(
        kind="article", number=article.number, title=article.title, status=article.status,
        status_label=article.get_status_display() if article.audience == "public" else "Agents only",
        updated_at=article.updated_at, url=reverse("portal:kb-article", kwargs={"slug": article.slug}),
        snippet=article.category.name if article.category_id else "",
    )


def _search(user, q: str, limit: int) -> SearchResults:
    from knowledge.selectors import articles_for_list

    # No more_url: the kernel's search page words that link as the agents' filtered search of a ticket type.
    return SearchResults([_row(article) for article in articles_for_list(user, q)[:limit]])


def _portal_search(user, q: str, limit: int) -> list[PortalHit]:
    """Published articles `user` may read, ranked by full-text match (knowledge.search), for the portal's
    search box and the report page's suggestions; each can be marked "This solved it" (a deflection)."""
    from knowledge.selectors import articles_for_portal_search

    return [
        PortalHit(kind="article", title=article.title, url=reverse("portal:kb-article", kwargs={"slug": article.slug}),
                  snippet=article.category.name if article.category_id else "", meta=article.number,
                  solved_url=reverse("portal:kb-solved", kwargs={"slug": article.slug}))
        for article in articles_for_portal_search(user, q)[:limit]
    ]


def _find_number(user, text: str) -> str | None:
    """"KB00012" opens that article when `user` may read it."""
    match = NUMBER.match(text or "")
    if not match:
        return None
    from knowledge.selectors import articles_visible_to

    slug = articles_visible_to(user).filter(id=int(match.group(1))).values_list("slug", flat=True).first()
    return reverse("portal:kb-article", kwargs={"slug": slug}) if slug else None


def _nav(request, current: str) -> list[NavItem]:
    """The workspace's "Knowledge" links, without counts: no query on every workspace page."""
    return [
        NavItem("Articles", reverse("agent:kb"), "i-file", current=current == "kb:list", testid="nav-kb"),
        NavItem("Drafts", f"{reverse('agent:kb')}?status=draft", "i-edit",
                current=current == "kb:drafts", testid="nav-kb-drafts"),
        NavItem("New article", reverse("agent:kb-new"), "i-plus", current=current == "kb:new",
                testid="nav-kb-new"),
    ]


def _suggested(request, ticket: TicketBrief) -> dict:
    """Published articles the agent may read that share words with the ticket, best first (one query)."""
    from knowledge.selectors import articles_suggested_for

    articles = articles_suggested_for(request.user, f"{ticket.title}\n{ticket.description}", limit=5)
    return {"ticket": ticket, "articles": articles}


def _write_from(request, ticket: TicketBrief) -> dict | None:
    """Once the ticket is solved: "Write an article" (the editor filled in from it), and the articles already
    written from it (one query)."""
    if not ticket.solved:
        return None
    from knowledge.models import Article

    written = list(Article.objects.filter(source_ticket=ticket.number).only("id", "title", "status")
                   .order_by("id"))
    url = f"{reverse('agent:kb-new')}?{urlencode({'from_kind': ticket.kind, 'from': ticket.number})}"
    return {"ticket": ticket, "url": url, "written": written}


def _seed(options: dict) -> str:
    from knowledge.demo import seed_articles, seed_deflections

    return f"{seed_articles()}; {seed_deflections()} past suggestions"


def register() -> None:
    from django.db.models.signals import post_delete

    from knowledge.api import ArticleViewSet
    from knowledge.models import Article
    from knowledge.search import search_forget
    from knowledge.services import on_portal_ticket_raised
    from servicedesk.signals import portal_ticket_raised

    post_delete.connect(search_forget, sender=Article, dispatch_uid="knowledge-search-forget")
    portal_ticket_raised.connect(on_portal_ticket_raised, dispatch_uid="knowledge-deflection-submitted")
    registry.portal_tile(PortalTile("kb", "Knowledge base", "Answers to common questions, step by step",
                                    "portal:kb", icon="i-info", order=50))
    registry.search_provider(SearchProvider("knowledge", "Knowledge base", _search, _find_number, order=50))
    registry.portal_search(PortalSearchProvider("knowledge", "Articles", _portal_search, order=10, answers=True))
    registry.api_route("kb/articles", ArticleViewSet, basename="kb-article")
    registry.demo_step(DemoStep("knowledge", _seed))
    registry.workspace_section(WorkspaceSection("knowledge", "Knowledge", _nav, order=40))
    registry.ticket_panel(TicketPanel("kb-suggested", "knowledge/_panel_suggested.html", _suggested,
                                      ticket_kinds=("incident",), order=20, shared=True))
    registry.ticket_panel(TicketPanel("kb-write", "knowledge/_panel_write.html", _write_from,
                                      ticket_kinds=("incident",), order=30))
