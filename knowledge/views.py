"""Portal pages of the knowledge base: /portal/kb/ (search and list) and /portal/kb/<slug>/ (an article with
"Was this helpful?"). What a person finds is decided by knowledge.selectors."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from knowledge import services
from knowledge.selectors import article_for_reader, articles_for_list, vote_of
from servicedesk.errors import DomainError

PAGE = 50


@login_required
def kb_index(request):
    q = request.GET.get("q", "").strip()[:200]
    articles = list(articles_for_list(request.user, q)[:PAGE + 1])
    return render(request, "knowledge/portal_index.html", {
        "q": q, "articles": articles[:PAGE], "more": len(articles) > PAGE, "limit": PAGE,
    })


def _article_or_404(request, slug):
    article = article_for_reader(request.user, slug)
    if article is None:
        raise Http404
    return article


@login_required
def kb_article(request, slug: str):
    article = _article_or_404(request, slug)
    services.article_viewed(article_id=article.id)
    # Opened from the report page's suggestions: remember it, so a ticket raised anyway is counted as such.
    suggested = request.GET.get("suggested")
    if suggested is not None:
        services.deflection_open(user=request.user, article_id=article.id, query=suggested)
    return render(request, "knowledge/portal_article.html", {
        "article": article, "vote": vote_of(request.user, article), "suggested": suggested,
    })


@login_required
@require_POST
def kb_solved(request, slug: str):
    """"This solved it" on a suggestion: recorded as a deflection; the person leaves without a ticket."""
    article = _article_or_404(request, slug)
    services.deflection_solve(user=request.user, article_id=article.id, query=request.POST.get("q", ""))
    return redirect("portal:kb-thanks", slug=article.slug)


@login_required
def kb_thanks(request, slug: str):
    article = _article_or_404(request, slug)
    return render(request, "knowledge/portal_thanks.html", {"article": article})


@login_required
@require_POST
def kb_vote(request, slug: str):
    article = _article_or_404(request, slug)
    answer = request.POST.get("helpful")
    if answer not in ("yes", "no"):
        messages.error(request, "Choose Yes or No.")
        return redirect("portal:kb-article", slug=article.slug)
    try:
        services.article_vote(article_id=article.id, user=request.user, helpful=answer == "yes")
    except DomainError:
        messages.info(request, "You have already told us about this article. Thank you.")
    else:
        messages.success(request, "Thank you for your feedback.")
    return redirect("portal:kb-article", slug=article.slug)
