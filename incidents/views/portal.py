"""Self-service portal pages of incidents (/portal/): report an issue and follow one's own incident.

The portal's home page and "My tickets" are the kernel's (servicedesk.views.portal_home); incidents contribute
the "Report an issue" tile and their rows through incidents.plugin. A requester reaches only their own
incidents whatever URL they type: the query decides (incidents.selectors)."""


from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from incidents import services
from incidents.forms import CommentForm, IncidentReportForm
from incidents.models import Channel
from incidents.selectors import incidents_for_detail
from incidents.views.incident import timeline_for
from servicedesk.errors import DomainError
from servicedesk.selectors import attachments_visible_to
from servicedesk.services import attachment_add
from servicedesk.signals import portal_ticket_raised


def _portal_context(request, incident):
    # The portal is the requester's view even for an agent who raised the ticket: no internal items here.
    return {
        "incident": incident,
        "timeline": timeline_for(incident, request.user, public_only=True),
        "attachments": list(attachments_visible_to(incident, request.user, public_only=True)),
        "form": CommentForm(),
    }


@login_required
def portal_incident(request, number: str):
    incident = get_object_or_404(incidents_for_detail(request.user).filter(requester=request.user), number=number)
    return render(request, "incidents/portal_incident.html", _portal_context(request, incident))


@login_required
def portal_report(request):
    form = IncidentReportForm(request.POST or None, request.FILES or None)
    # As the person types a title, the kernel's portal search suggests answers (deflection): htmx asks
    # /portal/suggest/, whose providers (the knowledge base) this app never imports.
    form.fields["title"].widget.attrs.update({
        "hx-get": reverse("portal:suggest"), "hx-trigger": "input changed delay:400ms",
        "hx-target": "#suggestions", "hx-sync": "this:replace", "autocomplete": "off",
        "aria-describedby": "suggestions",
    })
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                incident = services.incident_create(
                    title=data["title"], description=data["description"], requester=request.user,
                    created_by=request.user, urgency=data["urgency"], channel=Channel.PORTAL,
                    service=data["service"],
                )
                if data.get("attachment"):
                    attachment_add(ticket=incident, upload=data["attachment"], by=request.user)
                portal_ticket_raised.send(sender=type(incident), user=request.user, number=incident.number)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else ("attachment" if exc.field == "file" else None),
                           exc.message)
        else:
            messages.success(request, f"{incident.number} is raised. We will keep you posted here and by email.")
            return redirect("portal:incident", number=incident.number)
    return render(request, "incidents/portal_report.html", {"form": form})

