"""Portal pages of the service catalog and of service requests.

/portal/catalog/ lists what the person may order by category; /portal/catalog/<id>/ is an item's order form,
drawn from its CatalogFields and checked on the server by requests_app.forms_engine (every bad answer named
next to its field, nothing stored) before requests_app.services.request_submit. /portal/requests/<number>/
shows what was ordered, the answers, where it stands and its public history; the requester replies (with a
file), cancels while that is still possible, reopens a fulfilled request within the window, and rates it.
Who may see a request is decided by requests_app.selectors.requests_for (the requester; agents all)."""

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.models import ContentType
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from requests_app import forms_engine, services
from requests_app.forms_engine import AnswersInvalid
from requests_app.models import CatalogField, ServiceRequest
from requests_app.selectors import approval_chain, catalog_for_portal, catalog_items_for, requests_for
from requests_app.states import FINAL
from servicedesk.errors import DomainError
from servicedesk.models import TimelineEntry
from servicedesk.roles import is_staff_role
from servicedesk.selectors import attachments_visible_to


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
    reopen_until = services.reopen_deadline(found)
    if reopen_until is not None and timezone.now() > reopen_until:
        reopen_until = None  # the window has passed: no form that could only be refused
    return render(request, "requests_app/portal_request.html", {
        "req": found, "answers": answers, "timeline": timeline,
        "cancellable": found.status in services.CANCELLABLE,
        "chain": approval_chain(found),
        "reopen_until": reopen_until,
        "repliable": found.status not in FINAL,
        "attachments": list(attachments_visible_to(found, request.user, public_only=True)),
    })


@login_required
@require_POST
def portal_request_reply(request, number: str):
    found = _request_or_404(request.user, number)
    files = request.FILES.getlist("attachment")
    try:
        services.request_comment_add(request=found, author=request.user, body=request.POST.get("body", ""),
                                     files=files)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Reply sent.")
    return redirect("portal:request", number=found.number)


@login_required
@require_POST
def portal_request_reopen(request, number: str):
    found = _request_or_404(request.user, number)
    try:
        services.request_reopen(request_id=found.id, actor=request.user, reason=request.POST.get("reason", ""))
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{found.number} is reopened: the team will pick it up again.")
    return redirect("portal:request", number=found.number)


@login_required
@require_POST
def portal_request_cancel(request, number: str):
    found = _request_or_404(request.user, number)
    try:
        services.request_cancel(request_id=found.id, actor=request.user, reason=request.POST.get("reason", ""))
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{found.number} is cancelled.")
    return redirect("portal:request", number=found.number)


# --- the catalog and ordering ---------------------------------------------------------------------


@login_required
def portal_catalog(request):
    return render(request, "requests_app/portal_catalog.html", {"categories": catalog_for_portal(request.user)})


def _posted_answers(fields, post) -> dict:
    """An HTML form's answers as the form engine reads them: lists for multiple choice, booleans for yes/no
    (radio buttons when required, so "no" is an answer; a checkbox otherwise), strings for the rest; nothing
    for a field left empty."""
    answers = {}
    for field in fields:
        key = f"f_{field.name}"
        if field.type == forms_engine.MULTI_CHOICE:
            answers[field.name] = post.getlist(key)
        elif field.type == forms_engine.BOOLEAN:
            raw = post.get(key)
            if raw in ("yes", "on"):
                answers[field.name] = True
            elif raw == "no" or (raw is None and not field.required):
                answers[field.name] = False
        else:
            raw = post.get(key, "")
            if raw.strip():
                answers[field.name] = raw
    return answers


@dataclass
class FormRow:
    """One question of an order form as the template draws it."""

    field: CatalogField
    value: object = None
    error: str = ""

    @property
    def html_id(self) -> str:
        return f"f_{self.field.name}"

    @property
    def choices(self) -> list[str]:
        return self.field.choice_list

    @property
    def selected(self) -> list[str]:
        if isinstance(self.value, list):
            return self.value
        return [] if self.value in (None, "") else [str(self.value)]


@login_required
def portal_catalog_item(request, item_id: int):
    """An item's order form; POST orders it (or shows every bad answer next to its field, nothing stored)."""
    item = catalog_items_for(request.user).select_related("category").filter(id=item_id).first()
    if item is None:
        raise Http404("No such item")
    fields = list(item.fields.all())
    errors: dict[str, str] = {}
    posted: dict = {}
    if request.method == "POST":
        posted = _posted_answers(fields, request.POST)
        try:
            made = services.request_submit(item=item, answers=posted, requester=request.user,
                                           created_by=request.user)
        except AnswersInvalid as bad:
            errors = dict(bad.errors)
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{made.number} is on its way. We will keep you posted here and by email.")
            return redirect("portal:request", number=made.number)
    rows = [FormRow(field=f, value=posted.get(f.name), error=errors.get(f.name, "")) for f in fields]
    status = 400 if errors else 200
    return render(request, "requests_app/portal_order.html",
                  {"item": item, "rows": rows, "errors": errors, "bad_count": len(errors)}, status=status)
