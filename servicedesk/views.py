import logging

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view

from servicedesk.health import health_report
from servicedesk.models import Attachment
from servicedesk.roles import is_staff_role

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
