"""Agent workspace (/agent/) and self-service portal (/portal/) pages for incidents.

Every query goes through incidents.selectors, so a requester can reach only their own incidents
whatever URL they type; templates only mirror what the query decided.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from incidents import services
from incidents.forms import CommentForm, IncidentReportForm
from incidents.models import Channel
from incidents.selectors import incidents_for_list, incidents_visible_to
from incidents.states import OPEN, Status
from servicedesk.errors import DomainError
from servicedesk.roles import is_staff_role
from servicedesk.selectors import attachments_visible_to, timeline_visible_to
from servicedesk.services import attachment_add

PAGE_SIZE = 25


def agent_required(view):
    @login_required
    def wrapped(request, *args, **kwargs):
        if not is_staff_role(request.user):
            raise PermissionDenied("The agent workspace is for agents.")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def queue_counts(user) -> dict[str, int]:
    """The dashboard tiles, in one aggregate query."""
    open_q = Q(status__in=OPEN)
    team_ids = list(user.teams.values_list("id", flat=True))
    return incidents_visible_to(user).aggregate(
        open=Count("id", filter=open_q),
        mine=Count("id", filter=open_q & Q(assignee=user)),
        team_unassigned=Count("id", filter=open_q & Q(assignee__isnull=True, assignment_group_id__in=team_ids)),
        unassigned=Count("id", filter=open_q & Q(assignee__isnull=True)),
        on_hold=Count("id", filter=Q(status=Status.ON_HOLD)),
        critical=Count("id", filter=open_q & Q(priority__lte=2)),
        major=Count("id", filter=open_q & Q(major=True)),
    )


@agent_required
def dashboard(request):
    """Tiles with counts per queue and the open incidents, most urgent first."""
    incidents = incidents_for_list(request.user).filter(status__in=OPEN).order_by("priority", "-updated_at", "-id")
    page = Paginator(incidents, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "incidents/agent_dashboard.html", {"counts": queue_counts(request.user), "page": page})


def _detail_context(request, incident):
    return {
        "incident": incident,
        "timeline": list(timeline_visible_to(incident, request.user)),
        "attachments": list(attachments_visible_to(incident, request.user)),
        "form": CommentForm(),
    }


@agent_required
def agent_incident(request, number: str):
    incident = get_object_or_404(incidents_for_list(request.user), number=number)
    return render(request, "incidents/agent_incident.html", _detail_context(request, incident))


@login_required
def portal_home(request):
    """A requester's own incidents (agents see theirs too: the ones they raised)."""
    mine = incidents_for_list(request.user).filter(requester=request.user).order_by("-updated_at", "-id")
    page = Paginator(mine, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "incidents/portal_home.html", {"page": page})


@login_required
def portal_incident(request, number: str):
    incident = get_object_or_404(incidents_for_list(request.user).filter(requester=request.user), number=number)
    context = _detail_context(request, incident)
    # The portal is the requester's view even for an agent who raised the ticket: no internal items here.
    context["timeline"] = [e for e in context["timeline"] if not e.internal]
    context["attachments"] = [a for a in context["attachments"] if not a.internal]
    return render(request, "incidents/portal_incident.html", context)


@login_required
def portal_report(request):
    form = IncidentReportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                incident = services.incident_create(
                    title=data["title"], description=data["description"], requester=request.user,
                    created_by=request.user, urgency=data["urgency"], impact=3, channel=Channel.PORTAL,
                    service=data["service"],
                )
                if data.get("attachment"):
                    attachment_add(ticket=incident, upload=data["attachment"], by=request.user)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else ("attachment" if exc.field == "file" else None),
                           exc.message)
        else:
            messages.success(request, f"{incident.number} is raised. We will keep you posted here and by email.")
            return redirect("portal:incident", number=incident.number)
    return render(request, "incidents/portal_report.html", {"form": form})


@require_POST
@login_required
def comment(request, number: str):
    """Reply (portal or agent) or internal note (agents), with an optional attachment, in one transaction."""
    staff = is_staff_role(request.user)
    scope = incidents_visible_to(request.user)
    incident = get_object_or_404(scope, number=number)
    form = CommentForm(request.POST, request.FILES)
    back = "agent:incident" if staff and request.POST.get("from") != "portal" else "portal:incident"
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect(back, number=number)
    internal = form.cleaned_data["internal"] and staff and back == "agent:incident"
    try:
        with transaction.atomic():
            entry = services.incident_comment_add(incident=incident, author=request.user,
                                                  body=form.cleaned_data["body"], internal=internal)
            if form.cleaned_data.get("attachment"):
                attachment_add(ticket=incident, upload=form.cleaned_data["attachment"], by=request.user,
                               entry=entry, internal=internal)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Internal note added." if internal else "Reply sent.")
    return redirect(back, number=number)
