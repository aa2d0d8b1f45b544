import logging

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.messages.views import SuccessMessageMixin
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view

from servicedesk import workspace
from servicedesk.errors import DomainError
from servicedesk.health import health_report
from servicedesk.models import Attachment
from servicedesk.roles import is_staff_role
from servicedesk.services import rating_give, ticket_model_for
from servicedesk.tokens import api_token_revoke, api_tokens_of, api_tokens_revoke_all
from servicedesk.twofactor import has_second_factor

log = logging.getLogger(__name__)


@require_GET
@never_cache
def healthz(request):
    """200 when database, broker and a recent worker heartbeat are all there; 503 naming what is down.
    A worker that has never beaten yet is the normal state of a start, not worth a warning."""
    ok, report = health_report()
    if not ok:
        starting = report["down"] == ["worker"] and report["worker_heartbeat_age_seconds"] is None
        log.log(logging.DEBUG if starting else logging.WARNING, "health: %s down (%s)",
                ", ".join(report["down"]), "; ".join(f"{part}: {report[part]}" for part in report["down"]))
    return JsonResponse(report, status=200 if ok else 503)


@require_GET
def favicon(request):
    """Browsers ask /favicon.ico of pages that name no icon (Django admin's): the site's icon, not a 404 on the
    console."""
    from django.http import HttpResponsePermanentRedirect
    from django.templatetags.static import static

    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


@login_required
def home(request):
    return redirect("agent:dashboard" if is_staff_role(request.user) else "portal:home")


@extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY}, tags=["attachments"])
@api_view(["GET"])
def attachment_download(request, attachment_id: int):
    """Download an attachment (session or token auth). 404 unless the caller may see its ticket, and for
    requesters unless it is public."""
    attachment = get_object_or_404(Attachment.objects.select_related("content_type"), id=attachment_id)
    model = attachment.content_type.model_class()
    visible = getattr(model, "visible_to", None)
    if visible is None:
        raise Http404
    if not visible(request.user).filter(pk=attachment.object_id).exists():
        raise Http404
    if attachment.internal and not is_staff_role(request.user):
        raise Http404
    return FileResponse(attachment.file.open("rb"), as_attachment=True, filename=attachment.filename,
                        content_type=attachment.mime_type)


@login_required
def search(request):
    """Global search: a ticket number opens that ticket; words list matches of every ticket type the user
    may see, a few per type, each group linking to its app's full search."""
    q = request.GET.get("q", "").strip()
    if q:
        url = workspace.find_number(request.user, q)
        if url:
            return redirect(url)
    groups = workspace.search_everything(request.user, q) if q else []
    context = {"q": q, "groups": groups, "found": sum(len(g.results.rows) for g in groups),
               "scope": workspace.search_scope(request.user)}
    if is_staff_role(request.user):
        return workspace.agent_render(request, "search.html", {**context, "base": "agent/base.html"},
                                      current_nav="search")
    return render(request, "search.html", {**context, "base": "portal/base.html"})


@login_required
def portal_home(request):
    """The portal's front page: what the person can do (tiles every app registers) and their own tickets
    of every type, latest change first."""
    return render(request, "portal/home.html", {
        "tiles": workspace.portal_tiles(request.user),
        "panels": workspace.portal_panels(request),
        "tickets": workspace.my_tickets(request.user, limit=PORTAL_TICKETS),
        "limit": PORTAL_TICKETS,
        "q": "", "scope": workspace.portal_search_scope(),
    })


PORTAL_TICKETS = 50
PORTAL_HITS = 6


@login_required
@require_GET
def portal_search(request):
    """The portal's search box: articles to read and items to order (every app's PortalSearchProvider).
    htmx asks as the person types and gets the results alone; without JavaScript it is a plain GET form
    whose answer is this full page."""
    q = request.GET.get("q", "").strip()[:200]
    groups = workspace.portal_search(request.user, q, PORTAL_HITS)
    context = {"q": q, "groups": groups, "found": sum(len(g.hits) for g in groups),
               "scope": workspace.portal_search_scope()}
    if request.headers.get("HX-Request"):
        response = render(request, "portal/_search_results.html", {**context, "htmx": True})
    else:
        response = render(request, "portal/search.html", context)
    patch_vary_headers(response, ["HX-Request"])  # one URL, two answers: caches must keep them apart
    return response


@login_required
@require_GET
def portal_suggest(request):
    """Answers suggested while someone describes a problem (the report page's title, via htmx): hits of the
    providers marked `answers`, each with "This solved it" (deflection, recorded by the app that owns it)."""
    q = (request.GET.get("q") or request.GET.get("title") or "").strip()[:200]
    groups = workspace.portal_search(request.user, q, 3, answers_only=True) if len(q) >= 3 else []
    return render(request, "portal/_suggestions.html", {
        "q": q, "hits": [hit for group in groups for hit in group.hits],
    })


@login_required
@require_POST
def portal_rate(request, number: str):
    """The requester's satisfaction rating of one of their tickets (any type), from the form every portal
    ticket page includes (servicedesk/_rating.html). Back to the ticket's page with a message."""
    try:
        model = ticket_model_for(number.upper())
    except DomainError:
        raise Http404("No such ticket") from None
    ticket = model.objects.filter(number=number.upper(), requester=request.user).first()
    if ticket is None:
        raise Http404("No such ticket")
    back = workspace.safe_next(request, "/portal/")
    try:
        rating_give(ticket=ticket, by=request.user, score=request.POST.get("score"),
                    comment=request.POST.get("comment", ""))
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Thank you for rating it.")
    return redirect(back + "#rating")
# --- profile: the signed-in person's API tokens and password ----------------------------------------


@login_required
@require_GET
def profile(request):
    return render(request, "servicedesk/profile.html", {"tokens": api_tokens_of(request.user),
                                                        "two_factor_on": has_second_factor(request.user)})


@login_required
@require_POST
def profile_token_revoke(request, token_id: str):
    if not api_token_revoke(user=request.user, token_key=token_id, actor=request.user):
        raise Http404
    messages.success(request, f"Token {token_id}… revoked: it no longer works.")
    return redirect("profile")


@login_required
@require_POST
def profile_tokens_revoke_all(request):
    count = api_tokens_revoke_all(user=request.user, actor=request.user)
    messages.success(request, f"{count} token{'' if count == 1 else 's'} revoked.")
    return redirect("profile")


class PasswordChangeView(SuccessMessageMixin, auth_views.PasswordChangeView):
    """Django's password change; saving the new password revokes every API token (servicedesk.tokens)."""

    template_name = "registration/password_change.html"
    success_url = reverse_lazy("profile")
    success_message = "Password changed. Your API tokens were revoked: ask the API for a new one."
