"""Portal page of a service request: /portal/requests/<number>/ shows what was ordered, the answers, where it
stands and its public history, and lets the requester cancel it while that is still possible. Who may see a
request is decided by requests_app.selectors.requests_for (the requester; agents all)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.models import ContentType
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from requests_app import services
from requests_app.models import ServiceRequest
from requests_app.selectors import approval_chain, requests_for
from servicedesk.errors import DomainError
from servicedesk.models import TimelineEntry
from servicedesk.roles import is_staff_role


def _request_or_404(user, number: str) -> ServiceRequest:
    found = requests_for(user).filter(number=number.upper()).first()
    if found is None:
        raise Http404("No such request")
    return found


def _answer_text(value) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def answers_by_label(found: ServiceRequest) -> list[tuple[str, str]]:
    """The request's answers in the order of its item's form, each under its field's label."""
    return [(field.label, _answer_text(found.answers.get(field.name))) for field in found.item.fields.all()
            if field.name in found.answers]


@login_required
def portal_request(request, number: str):
    found = _request_or_404(request.user, number)
    if is_staff_role(request.user) and found.requester_id != request.user.id:
        # A link to a request (mail, search, a colleague) opened by an agent: the agent page, where they work it.
        # Their own requests stay here: the portal is everyone's own view.
        return redirect("agent:request", number=found.number)
    answers = answers_by_label(found)
    timeline = (TimelineEntry.objects.filter(content_type=ContentType.objects.get_for_model(ServiceRequest),
                                             object_id=found.id, internal=False)
                .select_related("author").order_by("created_at", "id"))
    return render(request, "requests_app/portal_request.html", {
        "req": found, "answers": answers, "timeline": timeline,
        "cancellable": found.status in services.CANCELLABLE,
        "chain": approval_chain(found),
    })


@login_required
@require_POST
def portal_request_cancel(request, number: str):
    found = _request_or_404(request.user, number)
    try:
        services.request_cancel(request_id=found.id, actor=request.user, reason=request.POST.get("reason", ""))
    except DomainError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{found.number} is cancelled.")
    return redirect("portal:request", number=found.number)
