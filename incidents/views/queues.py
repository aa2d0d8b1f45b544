"""Agent workspace (/agent/): the dashboard, queues, incident search, saved views and bulk actions.

Every query goes through incidents.selectors (directly or through incidents.workspace), so the permission is in
the query; every write goes through incidents.services, one transaction per incident."""


from django.contrib import messages
from django.db import transaction
from django.http import Http404, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from incidents import exports, services, workspace
from incidents.forms import (
    BULK_ACTIONS,
    BulkForm,
    SavedViewForm,
)
from incidents.models import SavedView
from incidents.selectors import incident_number_visible, incidents_visible_to
from incidents.states import HoldReason, Status
from servicedesk.errors import DomainError, InvalidInput, StaleVersion
from servicedesk.exports import export_format, export_links, export_refused, export_response, rows_of
from servicedesk.registry import registry
from servicedesk.roles import staff_choices, staff_options
from servicedesk.workspace import agent_render, agent_required, safe_next

PAGE_SIZE = 25


# --- dashboard and queues ---------------------------------------------------------------------------


@agent_required
def dashboard(request):
    """Tiles with counts per queue (each a link to it) and the open incidents, most urgent first."""
    incidents = workspace.queue_queryset(request.user, "all", "priority")
    page = workspace.rows_page(incidents, PAGE_SIZE, request.GET.get("cursor"))
    return agent_render(request, "incidents/agent_dashboard.html",
                        {"page": page, "counts": workspace.queue_counts_of(request), "params": request.GET},
                        current_nav="dashboard")


COLUMNS = [
    ("number", "Number"),
    ("priority", "Priority"),
    ("title", "Title"),
    # The service is the requester's second line (as the assignee is the group's): room for the SLA column.
    ("requester", "Requester"),
    ("status", "Status"),
    ("sla", "SLA due"),
    ("assignee", "Group / Assignee"),
    ("updated_at", "Updated"),
]
NEWEST_FIRST = {"updated_at", "created_at"}


def _columns(sort: str) -> list[dict]:
    """Header links: a click sorts by the column, a second click reverses it."""
    columns = []
    for key, label in COLUMNS:
        desc = sort == f"-{key}"
        active = sort.lstrip("-") == key
        if active:
            following = key if desc else f"-{key}"
        else:
            following = f"-{key}" if key in NEWEST_FIRST else key
        columns.append({"key": key, "label": label, "sort": following, "active": active,
                        "aria_sort": ("descending" if desc else "ascending") if active else None})
    return columns


def _export_path(queue, saved_view) -> str:
    if saved_view:
        return reverse("agent:saved_view", kwargs={"view_id": saved_view.id})
    if queue.key == workspace.SEARCH.key:
        return reverse("agent:search")
    return reverse("agent:queue", kwargs={"key": queue.key})


def _queue_or_export(request, queue, params, *, saved_view=None):
    """The queue page, or with ?export=csv|xlsx every row of the same filtered, sorted query as a download."""
    try:
        fmt = export_format(request)
    except InvalidInput as exc:
        return export_refused(exc)
    if fmt is None:
        return _render_queue(request, queue, params, saved_view=saved_view)
    _, _, filterset = workspace.queue_filtered(request, queue, params)
    name = f"incidents-{saved_view.name if saved_view else queue.key}-{timezone.localdate().isoformat()}"
    return export_response(filename=name, fmt=fmt, columns=exports.COLUMNS,
                           rows=rows_of(exports.export_rows(filterset.qs)),
                           sheet=saved_view.name if saved_view else queue.label)


def _render_queue(request, queue, params, *, saved_view=None, save_form=None, status=200):
    context = workspace.queue_page(request, queue, params)
    query = context["params"].copy()
    query.pop("cursor", None)
    context.update(
        export=export_links(_export_path(queue, saved_view), query),
        columns=_columns(context["sort"]),
        saved_view=saved_view,
        save_form=save_form or SavedViewForm(owner=request.user,
                                             initial={"queue": queue.key, "query": query.urlencode()}),
        current_nav=f"view:{saved_view.id}" if saved_view else f"queue:{queue.key}",
        teams=list(workspace.teams()),
        # The pick lists' options, drawn once for everyone; the list itself only when a filter selects one.
        agent_options=staff_options(),
        agent_choices=staff_choices,
        services=list(workspace.services()),
        statuses=Status.choices,
        priorities=[(i, f"P{i}") for i in range(1, 6)],
        hold_reasons=HoldReason.choices,
        resolution_codes=workspace.active_resolution_codes(),
        bulk_actions=BULK_ACTIONS,
        # Buttons other apps add to the bulk bar (servicedesk.registry.TicketBulkAction): each posts the checked
        # numbers to that app's own view.
        extra_bulk_actions=registry.bulk_actions_for("incident"),
        per_page_choices=workspace.PER_PAGE_CHOICES,
    )
    return agent_render(request, "incidents/agent_queue.html", context, status=status)


@agent_required
def queue(request, key: str):
    queue = workspace.QUEUE_BY_KEY.get(key)
    if queue is None:
        raise Http404("No such queue")
    return _queue_or_export(request, queue, request.GET)


@agent_required
def search(request):
    """A number the agent can see opens that incident; anything else lists matches of every status,
    searched over title, description, comments and internal notes."""
    number = incident_number_visible(request.user, request.GET.get("q", ""))
    if number and not request.GET.get("export"):  # an export is of the list, even of one number's match
        return redirect("agent:incident", number=number)
    return _queue_or_export(request, workspace.SEARCH, request.GET)


# --- saved views ------------------------------------------------------------------------------------


def _queue_of(key: str | None):
    if key == workspace.SEARCH.key:
        return workspace.SEARCH
    return workspace.QUEUE_BY_KEY.get(key or "", workspace.QUEUE_BY_KEY["all"])


@agent_required
@require_POST
def saved_view_create(request):
    form = SavedViewForm(request.POST, owner=request.user)
    if form.is_valid():
        try:
            view = services.saved_view_create(owner=request.user, name=form.cleaned_data["name"],
                                              query=form.query_string())
        except DomainError as exc:
            form.add_error("name", exc.message.removeprefix("name: "))
        else:
            messages.success(request, f"Saved the view “{view.name}”.")
            return redirect("agent:saved_view", view_id=view.id)
    # Show the queue the agent was looking at, with the form open and its error.
    params = QueryDict(request.POST.get("query", ""))
    return _render_queue(request, _queue_of(request.POST.get("queue")), params, save_form=form, status=400)


@agent_required
@require_GET
def saved_view(request, view_id: int):
    """One of the agent's own views: its stored filters, overridden by whatever the page adds (page, sort)."""
    view = get_object_or_404(SavedView.objects.filter(owner=request.user), id=view_id)
    params = QueryDict(view.query, mutable=True)
    for key in request.GET:
        params.setlist(key, request.GET.getlist(key))
    return _queue_or_export(request, _queue_of(params.get("queue")), params, saved_view=view)


@agent_required
@require_POST
def saved_view_delete(request, view_id: int):
    try:
        view = services.saved_view_delete(owner=request.user, view_id=view_id)
    except SavedView.DoesNotExist:
        raise Http404 from None
    key = QueryDict(view.query).get("queue")
    messages.success(request, f"Deleted the view “{view.name}”.")
    return redirect("agent:queue", key=key if key in workspace.QUEUE_BY_KEY else "all")


# --- bulk actions -----------------------------------------------------------------------------------


def _bulk_apply(data: dict, incident, user) -> None:
    action = data["action"]
    # The version the agent's queue page showed for this row: someone else's change since is not overwritten.
    common = {"incident_id": incident.id, "actor": user, "version": data["versions"].get(incident.number)}
    if action == "assign_me":
        services.incident_assign(**common, assignee=user)
    elif action == "assign":
        assignment = {}
        if data.get("assignment_group"):
            assignment["assignment_group"] = data["assignment_group"]
        if data.get("assignee"):
            assignment["assignee"] = data["assignee"]
        services.incident_assign(**common, **assignment)
    elif action == "hold":
        services.incident_hold(**common, hold_reason=data["hold_reason"], reason=data["reason"])
    elif action == "resume":
        services.incident_resume(**common, reason=data["reason"])
    elif action == "resolve":
        services.incident_resolve(**common, resolution_code=data["resolution_code"].code,
                                  resolution_notes=data["resolution_notes"])
    elif action == "close":
        services.incident_close(**common)
    elif action == "cancel":
        services.incident_cancel(**common, reason=data["reason"])
    elif action in ("comment", "note"):
        services.incident_comment_add(incident=incident, author=user, body=data["body"],
                                      internal=action == "note")
    else:  # pragma: no cover - the form's choices stop this
        raise ValueError(action)


@agent_required
@require_POST
def bulk(request):
    """Apply one action to the checked incidents: the same service per incident, each in its own
    transaction, so one refusal does not undo the others. Reports "N updated" and each failure by number."""
    back = safe_next(request, reverse("agent:dashboard"))
    form = BulkForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Nothing changed: {form.error_text()}.")
        return redirect(back)
    data = form.cleaned_data
    found = {
        i.number: i
        for i in incidents_visible_to(request.user).filter(number__in=data["numbers"]).select_related("requester")
    }
    updated, failures = 0, []
    for number in data["numbers"]:
        incident = found.get(number)
        if incident is None:
            failures.append(f"{number}: no such incident")
            continue
        try:
            with transaction.atomic():
                _bulk_apply(data, incident, request.user)
        except StaleVersion as exc:
            failures.append(f"Not changed: {exc.message}")  # it starts with the number, says who and when
        except DomainError as exc:
            failures.append(f"{number}: {exc.message}")
        else:
            updated += 1
    label = dict(BULK_ACTIONS)[data["action"]].rstrip("…").lower()
    (messages.success if updated else messages.warning)(request, f"{updated} updated ({label}).")
    for failure in failures:
        messages.error(request, failure)
    return redirect(back)

