"""Service requests in the agent workspace (/agent/requests/): the queues and the request page with its actions.

Reads go through requests_app.selectors (and requests_app.workspace), writes through requests_app.services, one
service per POST. The lifecycle buttons are drawn from requests_app.states.ALLOWED; the services decide. A stale
version comes back as a 409 page saying who changed the request and when, with nothing saved."""

from dataclasses import dataclass, field

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from requests_app import services, workspace
from requests_app.models import ServiceRequest
from requests_app.selectors import approval_chain, requests_for
from requests_app.sla import TICKET_TYPE
from requests_app.states import ALLOWED, OPEN, Status
from requests_app.views import answers_by_label
from servicedesk.errors import DomainError, InvalidInput, StaleVersion
from servicedesk.exports import (
    Column,
    export_format,
    export_links,
    export_refused,
    export_response,
    person_name,
    rows_of,
)
from servicedesk.selectors import attachments_visible_to, people_names
from servicedesk.watchers import watchers_of
from servicedesk.workspace import agent_render, agent_required, timeline_context
from sla.clocks import clocks_of
from sla.display import clock_views

# --- queues -----------------------------------------------------------------------------------------

COLUMNS = [
    ("number", "Number"),
    (None, "Item"),
    (None, "Requester"),
    (None, "Status"),
    (None, "Team / Assignee"),
    ("sla", "SLA due"),
    ("updated_at", "Updated"),
]
NEWEST_FIRST = {"updated_at", "created_at"}


def _columns(sort: str) -> list[dict]:
    """Header cells: a sortable column's click sorts by it, a second click reverses it."""
    columns = []
    for key, label in COLUMNS:
        if key is None:
            columns.append({"key": None, "label": label})
            continue
        desc = sort == f"-{key}"
        active = sort.lstrip("-") == key
        following = (key if desc else f"-{key}") if active else (f"-{key}" if key in NEWEST_FIRST else key)
        columns.append({"key": key, "label": label, "sort": following, "active": active,
                        "aria_sort": ("descending" if desc else "ascending") if active else None})
    return columns


_STATUS = dict(Status.choices)
EXPORT_COLUMNS = [
    Column("Number", lambda r: r.number, width=12),
    Column("Title", lambda r: r.title, width=40),
    Column("Item", lambda r: r.item.name, width=28),
    Column("Status", lambda r: _STATUS.get(r.status, r.status), width=18),
    Column("Priority", lambda r: f"P{r.priority}", width=9),
    Column("Team", lambda r: r.assignment_group.name if r.assignment_group else "", width=20),
    Column("Assignee", lambda r: person_name(r.assignee), width=20),
    Column("Requester", lambda r: person_name(r.requester), width=20),
    Column("Created", lambda r: r.created_at, "datetime"),
    Column("Updated", lambda r: r.updated_at, "datetime"),
    Column("Fulfilled", lambda r: r.fulfilled_at, "datetime"),
    Column("Closed", lambda r: r.closed_at, "datetime"),
    Column("SLA due", lambda r: r.sla_due_at, "datetime"),
]


@agent_required
def request_queue(request, key: str):
    """One queue a page at a time; with ?export=csv|xlsx every row of the same query, in the same order."""
    queue = workspace.QUEUE_BY_KEY.get(key)
    if queue is None:
        raise Http404("No such queue")
    try:
        fmt = export_format(request)
    except InvalidInput as exc:
        return export_refused(exc)
    params = request.GET.copy()
    sort = workspace.sort_key(params.get("sort"))
    if fmt:
        return export_response(filename=f"requests-{queue.key}-{timezone.localdate().isoformat()}", fmt=fmt,
                               columns=EXPORT_COLUMNS, sheet=queue.label,
                               rows=rows_of(workspace.queue_queryset(request.user, queue.key, sort)))
    per_page = workspace.per_page_of(params.get("per_page"))
    page = workspace.rows_page(workspace.queue_queryset(request.user, queue.key, sort), per_page,
                               params.get("cursor"))
    return agent_render(request, "requests_app/agent_queue.html", {
        "queue": queue, "page": page, "sort": sort, "per_page": per_page, "params": params,
        "columns": _columns(sort), "per_page_choices": workspace.PER_PAGE_CHOICES,
        "export": export_links(request.path, params),
    }, current_nav=f"requests:{queue.key}")


# --- the request page -------------------------------------------------------------------------------


@dataclass
class Action:
    key: str
    label: str
    to: str | None
    icon: str
    kind: str = "button"  # button: one click; panel: a small form with fields
    style: str = ""
    fields: list[str] = field(default_factory=list)


ACTION_ORDER = ["assign_me", "retry", "fulfil", "close", "cancel"]


def _transition_action(current: str, to: str) -> Action | None:
    """How one move of requests_app.states.ALLOWED is offered to an agent here, or None when it is someone
    else's to make (approvers decide approvals; fulfilment starts by itself after submission or approval)."""
    if to == Status.FULFILLED:
        return Action("fulfil", "Fulfil", to, "i-check-circle", kind="panel", style="success", fields=["note"])
    if to == Status.CLOSED:
        return Action("close", "Close", to, "i-lock")
    if to == Status.CANCELLED:
        return Action("cancel", "Cancel request", to, "i-x-circle", kind="panel", style="danger", fields=["reason"])
    if to == Status.IN_FULFILMENT and current == Status.FAILED:
        # Back into fulfilment: an automated item's handler runs again (requests_app.services.request_retry).
        return Action("retry", "Retry", to, "i-rotate", style="primary")
    return None


def request_actions(req, user) -> list[Action]:
    """The buttons for this request, drawn from ALLOWED for its status, plus "Assign to me" while it is open
    and someone else (or nobody) has it."""
    actions = [a for a in (_transition_action(req.status, to) for to in ALLOWED[req.status]) if a]
    if req.status in OPEN and req.assignee_id != user.id:
        actions.append(Action("assign_me", "Assign to me", None, "i-user", style="primary"))
    actions.sort(key=lambda a: ACTION_ORDER.index(a.key))
    return actions


def _request_or_404(user, number: str) -> ServiceRequest:
    found = requests_for(user).filter(number=number.upper()).first()
    if found is None:
        raise Http404("No such request")
    return found


CHANGE_LABELS = {"assignment_group": "Team", "assignee": "Assignee", "status": "Status", "priority": "Priority"}


def timeline_spelled(entries: list) -> list:
    """Timeline entries as an agent reads them: field changes spelled for people (statuses, people's names)."""
    statuses = dict(Status.choices)
    changed = [(e, (e.data or {}).get("changes") or {}) for e in entries if e.kind == "change"]
    people = people_names(c.get(end) for _, changes in changed for name, c in changes.items()
                          if name == "assignee" for end in ("old", "new"))

    def spell(name, value):
        if name == "status":
            return statuses.get(value, value)
        if name == "assignee":
            return people.get(value, value)
        return value

    for entry, changes in changed:
        entry.change_list = [(CHANGE_LABELS.get(name, name.replace("_", " ").capitalize()),
                              spell(name, c.get("old")), spell(name, c.get("new"))) for name, c in changes.items()]
    return entries


def _render_request(request, req, *, status: int = 200, **extra):
    user = request.user
    team_members = list(workspace.team_members(req.assignment_group))
    context = {
        "req": req,
        "answers": answers_by_label(req),
        "chain": approval_chain(req),
        **timeline_context(request, req, reverse("agent:request", args=[req.number]), timeline_spelled),
        "attachments": list(attachments_visible_to(req, user)),
        "actions": request_actions(req, user),
        "assignable": req.status in OPEN,
        "team_members": team_members,
        "teams": list(workspace.teams()),
        "sla_clocks": clock_views(clocks_of(TICKET_TYPE, [req.id]).get(req.id, []), timezone.now()),
        "final": req.status in (Status.CLOSED, Status.CANCELLED),
        "watchers": list(watchers_of(req)),
        "watch_open": req.status not in (Status.CLOSED, Status.CANCELLED),
    }
    context.update(extra)
    return agent_render(request, "requests_app/agent_request.html", context, current_nav="request", status=status)


@agent_required
def agent_request(request, number: str):
    return _render_request(request, _request_or_404(request.user, number))


class VersionForm(forms.Form):
    version = forms.IntegerField(min_value=1)


class TransitionForm(VersionForm):
    to = forms.ChoiceField(choices=Status.choices)
    note = forms.CharField(required=False, max_length=5000)
    reason = forms.CharField(required=False, max_length=2000)


class AssignForm(VersionForm):
    assignee = forms.CharField(required=False, max_length=150)  # a username; empty: nobody
    assignment_group = forms.IntegerField(required=False)  # a team id; empty: the request's own team


class CommentForm(forms.Form):
    body = forms.CharField(required=False, max_length=20000)
    internal = forms.BooleanField(required=False)
    attachment = forms.FileField(required=False)


def _form_errors(form) -> str:
    return "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())


def _refused(request, number: str, exc: DomainError, *, open_action: str | None = None, data=None):
    """Nothing was saved: draw the page again with the reason (a conflict also says to reload), at 409/400."""
    fresh = _request_or_404(request.user, number)
    conflict = isinstance(exc, StaleVersion)
    alert = {"kind": "conflict" if conflict else "error", "message": exc.message}
    return _render_request(request, fresh, status=exc.status_code, alert=alert,
                           open_action=None if conflict else open_action, action_data=data or {})


DONE = {
    Status.FULFILLED: "is fulfilled",
    Status.CLOSED: "is closed",
    Status.CANCELLED: "is cancelled",
    Status.IN_FULFILMENT: "is back in fulfilment",
}


@agent_required
@require_POST
def transition(request, number: str):
    """One lifecycle move through its service: fulfil (with a note), close, cancel (with a reason), retry."""
    req = _request_or_404(request.user, number)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return _render_request(request, req, status=400, open_action=request.POST.get("to"),
                               action_data=request.POST)
    data = form.cleaned_data
    common = {"request_id": req.id, "actor": request.user, "version": data["version"]}
    to = data["to"]
    try:
        if to == Status.FULFILLED:
            done = services.request_fulfil(**common, note=data["note"])
        elif to == Status.CLOSED:
            done = services.request_close(**common)
        elif to == Status.CANCELLED:
            done = services.request_cancel(**common, reason=data["reason"])
        elif to == Status.IN_FULFILMENT:
            done = services.request_retry(**common)
        else:
            messages.error(request, f"status: {Status(to).label.lower()} is not decided on this page")
            return _render_request(request, req, status=400)
    except DomainError as exc:
        return _refused(request, number, exc, open_action=to, data=request.POST)
    messages.success(request, f"{done.number} {DONE.get(done.status, 'is ' + done.get_status_display().lower())}.")
    return redirect("agent:request", number=done.number)


@agent_required
@require_POST
def assign(request, number: str):
    """Assign to me, to a member of the team, or hand the request to another team (its assignee is cleared)."""
    req = _request_or_404(request.user, number)
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return _render_request(request, req, status=400)
    data = form.cleaned_data
    username = (data["assignee"] or "").strip()
    try:
        if data["assignment_group"] and data["assignment_group"] != req.assignment_group_id and not username:
            team = workspace.teams().filter(id=data["assignment_group"]).first()
            if team is None:
                messages.error(request, f"assignment_group: there is no team {data['assignment_group']}")
                return _render_request(request, req, status=400)
            done = services.request_assign(request_id=req.id, actor=request.user, assignment_group=team,
                                           version=data["version"])
            notice = f"Handed to {team.name}."
        else:
            person = get_user_model().objects.filter(username=username).first() if username else None
            if username and person is None:
                messages.error(request, f"assignee: there is no user {username}")
                return _render_request(request, req, status=400)
            done = services.request_assignee_set(request_id=req.id, actor=request.user, assignee=person,
                                                 version=data["version"])
            if person is None:
                notice = "Unassigned."
            elif person.id == request.user.id:
                notice = "Assigned to you."
            else:
                notice = f"Assigned to {person.get_full_name() or person.username}."
    except DomainError as exc:
        return _refused(request, number, exc)
    messages.success(request, notice)
    return redirect("agent:request", number=done.number)


@agent_required
@require_POST
def comment(request, number: str):
    """A public reply to the requester or an internal note, with an optional attachment, in one transaction."""
    req = _request_or_404(request.user, number)
    form = CommentForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return redirect("agent:request", number=req.number)
    internal = form.cleaned_data["internal"]
    upload = form.cleaned_data.get("attachment")
    try:
        with transaction.atomic():
            services.request_comment_add(request=req, author=request.user, body=form.cleaned_data["body"],
                                         internal=internal, files=[upload] if upload else [])
    except DomainError as exc:
        messages.error(request, exc.message)
        return _render_request(request, _request_or_404(request.user, number), status=exc.status_code,
                               comment_data=request.POST)
    messages.success(request, "Internal note added." if internal else "Reply sent.")
    return redirect("agent:request", number=req.number)
