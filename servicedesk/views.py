from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view

from servicedesk import workspace
from servicedesk.health import health_report
from servicedesk.models import Attachment
from servicedesk.roles import is_staff_role


@require_GET
@never_cache
def healthz(request):
    """200 when database, broker and a recent worker heartbeat are all there; 503 naming what is down."""
    ok, report = health_report()
    return JsonResponse(report, status=200 if ok else 503)


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
    context = {"q": q, "groups": groups, "found": sum(len(g.results.rows) for g in groups)}
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
        "tickets": workspace.my_tickets(request.user, limit=PORTAL_TICKETS),
        "limit": PORTAL_TICKETS,
    })


PORTAL_TICKETS = 50
