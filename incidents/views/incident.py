"""Agent workspace (/agent/incidents/<number>/): the incident page, in-place edits, actions drawn from the
transition table, parent links, canned responses, and the conversation (replies and internal notes), which the
portal posts to as well.

HTML forms work without JavaScript; htmx only swaps the parts that changed. Domain errors come back as
messages naming the field; a stale version comes back as "changed by X at T, reload"."""

from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from incidents import services, workspace
from incidents.forms import (
    ASSIGNMENT_FIELDS,
    EDIT_LABELS,
    LEVELS,
    CommentForm,
    FieldEditForm,
    ParentLinkForm,
    TransitionForm,
)
from incidents.search import number_of
from incidents.selectors import incidents_for_page, incidents_visible_to, with_references
from incidents.sla import TICKET_TYPE
from incidents.states import ALLOWED, FINAL, OPEN, HoldReason, Status
from servicedesk.errors import DomainError, StaleVersion
from servicedesk.registry import registry
from servicedesk.roles import is_staff_role
from servicedesk.selectors import attachments_visible_to, people_names, timeline_visible_to
from servicedesk.services import attachment_add
from servicedesk.watchers import watchers_of
from servicedesk.workspace import agent_render, agent_required, ticket_panels, timeline_context
from sla.clocks import clocks_of
from sla.display import clock_views

# --- the incident page ------------------------------------------------------------------------------


@dataclass
class Fact:
    name: str
    label: str
    value: str | None
    editable: bool = True


@dataclass
class Action:
    key: str
    label: str
    to: str | None
    icon: str
    kind: str = "button"  # button: one click; panel: a small form with fields; assign: through the edit URL
    style: str = ""
    fields: list[str] = field(default_factory=list)


# The order buttons appear in: moving the incident forward first, giving up on it last.
ACTION_ORDER = ["assign_me", "start", "resume", "reopen", "resolve", "hold", "close", "cancel"]


def _transition_action(current: str, to: str, incident, user) -> Action:
    """How one move of incidents.states.ALLOWED is offered; which moves exist is the table's business."""
    if to == Status.IN_PROGRESS:
        if current == Status.NEW:
            if incident.assignee_id == user.id:
                return Action("start", "Start work", to, "i-play", style="primary")
            # Assigning a person to a new incident starts it (incident_assign).
            return Action("assign_me", "Assign to me", to, "i-user", kind="assign", style="primary")
        if current == Status.ON_HOLD:
            return Action("resume", "Resume", to, "i-play", style="primary")
        return Action("reopen", "Reopen", to, "i-rotate", kind="panel", fields=["reason_required"])
    if to == Status.ON_HOLD:
        return Action("hold", "Put on hold", to, "i-pause", kind="panel", fields=["hold_reason", "reason"])
    if to == Status.RESOLVED:
        return Action("resolve", "Resolve", to, "i-check-circle", kind="panel", style="success",
                      fields=["resolution"])
    if to == Status.CLOSED:
        return Action("close", "Close", to, "i-lock")
    if to == Status.CANCELLED:
        return Action("cancel", "Cancel incident", to, "i-x-circle", kind="panel", style="danger",
                      fields=["reason"])
    raise ValueError(f"no button for {current} -> {to}")


def incident_actions(incident, user) -> list[Action]:
    """The buttons for this incident, drawn from ALLOWED for its status, plus "Assign to me" while it is
    open and someone else (or nobody) has it."""
    actions = [_transition_action(incident.status, to, incident, user) for to in ALLOWED[incident.status]]
    if incident.status in OPEN and incident.assignee_id != user.id and not any(a.key == "assign_me"
                                                                                for a in actions):
        actions.append(Action("assign_me", "Assign to me", None, "i-user", kind="assign"))
    actions.sort(key=lambda a: ACTION_ORDER.index(a.key))
    return actions


def _facts(incident) -> list[Fact]:
    level = dict(LEVELS)
    updatable = incident.status not in FINAL
    assignable = incident.status in OPEN

    def person(user):
        return user.get_full_name() or user.username

    return [
        Fact("impact", EDIT_LABELS["impact"], level[incident.impact], updatable),
        Fact("urgency", EDIT_LABELS["urgency"], level[incident.urgency], updatable),
        Fact("priority", "Priority", f"P{incident.priority}", False),
        Fact("service", EDIT_LABELS["service"], incident.service.name if incident.service_id else None, updatable),
        Fact("configuration_item", EDIT_LABELS["configuration_item"],
             incident.configuration_item.name if incident.configuration_item_id else None, updatable),
        Fact("category", EDIT_LABELS["category"], str(incident.category) if incident.category_id else None,
             updatable),
        Fact("assignment_group", EDIT_LABELS["assignment_group"],
             incident.assignment_group.name if incident.assignment_group_id else None, assignable),
        Fact("assignee", EDIT_LABELS["assignee"], person(incident.assignee) if incident.assignee_id else None,
             assignable),
        Fact("major", "Major", "Yes" if incident.major else "No", updatable),
    ]


def _incident_or_404(request, number: str):
    return with_references(get_object_or_404(incidents_for_page(request.user), number=number))


CHANGE_LABELS = {**EDIT_LABELS, "configuration_item": "Configuration item", "assignment_group": "Group",
                 "status": "Status", "priority": "Priority", "parent": "Parent", "description": "Description",
                 "major": "Major"}


PERSON_FIELDS = {"assignee", "requester"}  # changes store usernames: shown as the people's names


def _change_value(name: str, value, statuses: dict, people: dict):
    if name == "status":
        return statuses.get(value, value)
    if name == "major":
        return "Yes" if value else "No"
    if name in PERSON_FIELDS:
        return people.get(value, value)
    return value


def timeline_for(incident, user, *, public_only: bool = False, entries: list | None = None) -> list:
    """The visible timeline (or the `entries` given: the latest, servicedesk.selectors.timeline_recent), with
    each field change spelled for people (labels, status and people's names)."""
    if entries is None:
        entries = list(timeline_visible_to(incident, user, public_only=public_only))
    statuses = dict(Status.choices)
    changed = [(e, (e.data or {}).get("changes") or {}) for e in entries if e.kind == "change"]
    people = people_names(c.get(end) for _, changes in changed for name, c in changes.items()
                          if name in PERSON_FIELDS for end in ("old", "new"))
    for entry, changes in changed:
        entry.change_list = [
            (CHANGE_LABELS.get(name, name.replace("_", " ").capitalize()),
             _change_value(name, c.get("old"), statuses, people), _change_value(name, c.get("new"), statuses, people))
            for name, c in changes.items()
        ]
    return entries


def _incident_context(request, incident, **extra) -> dict:
    user = request.user
    facts = _facts(incident)
    codes = workspace.active_resolution_codes()
    context = {
        "incident": incident,
        "page_version": incident.version,
        **timeline_context(request, incident, reverse("agent:incident", args=[incident.number]),
                           lambda entries: timeline_for(incident, user, entries=entries)),
        "attachments": list(attachments_visible_to(incident, user)),
        "form": CommentForm(),
        "actions": incident_actions(incident, user),
        "facts": facts,
        "title_editable": incident.status not in FINAL,
        "children": workspace.children_of(incident, user),
        "watchers": list(watchers_of(incident)),
        "sla_clocks": clock_views(clocks_of(TICKET_TYPE, [incident.id]).get(incident.id, []), timezone.now()),
        "canned_responses": list(workspace.canned_responses_for(user)),
        "hold_reasons": HoldReason.choices,
        "resolution_codes": codes,
        "resolution_label": next((c.label for c in codes if c.code == incident.resolution_code),
                                 incident.resolution_code),
        "parent_form": ParentLinkForm(initial={"version": incident.version}),
        # Cards other apps add to the side column (servicedesk.registry.TicketPanel), e.g. suggested articles.
        "ticket_panels": ticket_panels(request, "incident", incident),
        # What other apps say against resolving it now (servicedesk.registry.ResolveCheck: alerts still firing),
        # shown in the Resolve panel with "Resolve anyway"; asked only while Resolve is offered.
        "resolve_objections": (registry.resolve_objections("incident", incident)
                               if Status.RESOLVED in ALLOWED[incident.status] else []),
        "current_nav": "incident",
    }
    context.update(extra)
    return context


def _render_incident(request, incident, *, status=200, editing=None, edit_form=None, **extra):
    if editing and edit_form is None:
        edit_form = FieldEditForm(incident=incident, field_name=editing)
    context = _incident_context(request, incident, editing=editing, edit_form=edit_form, **extra)
    return agent_render(request, "incidents/agent_incident.html", context, status=status)


@agent_required
def agent_incident(request, number: str):
    incident = _incident_or_404(request, number)
    editing = request.GET.get("edit")
    editable = {f.name for f in _facts(incident) if f.editable}
    if incident.status not in FINAL:
        editable.add("title")
    extra = {}
    canned_id = request.GET.get("canned", "")
    if canned_id.isdigit():
        # Without JavaScript the canned-response picker reloads the page with the text in the reply box.
        canned = workspace.canned_responses_for(request.user).filter(id=canned_id).first()
        if canned is not None:
            text = services.canned_render(canned.body, incident=incident, agent=request.user)
            extra["form"] = CommentForm(initial={"body": text})
    return _render_incident(request, incident, editing=editing if editing in editable else None, **extra)


def _alert(kind: str, message: str, *, reload: bool = False) -> dict:
    return {"kind": kind, "message": message, "reload": reload}


@agent_required
def edit(request, number: str):
    """In-place edit of one field. GET (htmx) returns the field's little form, or the field as shown
    (mode=show); POST saves it with the version the page was drawn from. htmx gets the refreshed header,
    details and timeline back; without JavaScript the page is redirected (or redrawn with the error)."""
    incident = _incident_or_404(request, number)
    source = request.POST if request.method == "POST" else request.GET
    name = source.get("field")
    if name not in EDIT_LABELS:
        return HttpResponseBadRequest("field: choose one of " + ", ".join(EDIT_LABELS))
    if request.method == "GET":
        return _edit_get(request, incident, name)
    if request.method != "POST":
        return HttpResponse(status=405)

    form = FieldEditForm(request.POST, incident=incident, field_name=name)
    if not form.is_valid():
        errors = "; ".join(f"{form.label if k == 'value' else k}: {' '.join(v)}" for k, v in form.errors.items())
        return _edit_failed(request, incident, name, errors, status=400, form=form)
    value, version = form.cleaned_data["value"], form.cleaned_data["version"]
    before = incident.priority
    try:
        if name in ASSIGNMENT_FIELDS:
            services.incident_assign(incident_id=incident.id, actor=request.user, version=version, **{name: value})
        else:
            services.incident_update(incident_id=incident.id, actor=request.user, version=version, **{name: value})
    except StaleVersion as exc:
        return _edit_failed(request, incident, name, exc.message, status=409, conflict=True)
    except DomainError as exc:
        return _edit_failed(request, incident, name, exc.message, status=exc.status_code, form=form)

    status_before = incident.status
    incident = _incident_or_404(request, number)
    notice = f"{form.label} saved."
    if name == "assignee":
        who = "you" if incident.assignee_id == request.user.id else (
            incident.assignee.get_full_name() or incident.assignee.username if incident.assignee_id else None)
        notice = f"Assigned to {who}." if who else "Unassigned."
    if incident.status != status_before:
        notice += f" It is now {incident.get_status_display().lower()}."
    if incident.priority != before:
        notice += f" Priority is now P{incident.priority} (was P{before})."
    if not request.htmx:
        messages.success(request, notice)
        return redirect("agent:incident", number=number)
    context = _incident_context(request, incident, alert=_alert("success", notice))
    return render(request, "incidents/_incident_live.html", context)


def _edit_get(request, incident, name):
    if not request.htmx:
        return redirect(f"{reverse('agent:incident', args=[incident.number])}?edit={name}#fact-{name}")
    try:
        version = int(request.GET.get("version") or incident.version)
    except ValueError:
        version = incident.version
    editing = request.GET.get("mode") != "show"
    context = {"incident": incident, "page_version": version,
               "edit_form": FieldEditForm(incident=incident, field_name=name, version=version) if editing else None}
    if name == "title":
        context["title_editable"] = True
        return render(request, "incidents/_title.html", context)
    context["f"] = next(f for f in _facts(incident) if f.name == name)
    return render(request, "incidents/_fact.html", context)


def _edit_failed(request, incident, name, message, *, status, conflict=False, form=None):
    """Nothing was saved. htmx: only the alert changes, the open form keeps what the agent typed.
    Without JavaScript: the page is drawn again with the alert (and the form, unless it is a conflict)."""
    alert = _alert("conflict" if conflict else "error", message, reload=conflict)
    if request.htmx:
        response = render(request, "incidents/_incident_alert.html",
                          {"incident": incident, "alert": alert, "oob": True}, status=status)
        response["HX-Reswap"] = "none"
        return response
    return _render_incident(request, incident, status=status, alert=alert,
                            editing=None if conflict else name, edit_form=None if conflict else form)


TRANSITION_DONE = {
    Status.IN_PROGRESS: "is in progress",
    Status.ON_HOLD: "is on hold",
    Status.RESOLVED: "is resolved",
    Status.CLOSED: "is closed",
    Status.CANCELLED: "is cancelled",
}


@agent_required
@require_POST
def transition(request, number: str):
    """One lifecycle move; incidents.services checks it against ALLOWED and names any missing field.
    An error redraws the page with the action's form still open and filled in."""
    incident = _incident_or_404(request, number)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return _render_incident(request, incident, status=400, open_action=request.POST.get("to"),
                                action_data=request.POST)
    data = form.cleaned_data
    try:
        incident = services.incident_transition(
            incident_id=incident.id, to=data["to"], actor=request.user, version=data["version"],
            hold_reason=data["hold_reason"], reason=data["reason"], resolution_code=data["resolution_code"],
            resolution_notes=data["resolution_notes"],
            # "Resolve anyway": the agent saw the objections in the Resolve panel and goes ahead.
            force=data["to"] == Status.RESOLVED and request.POST.get("force") == "1",
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        fresh = _incident_or_404(request, number)
        conflict = isinstance(exc, StaleVersion)
        return _render_incident(
            request, fresh, status=exc.status_code, open_action=None if conflict else data["to"],
            action_data=request.POST,
            alert=_alert("conflict", exc.message, reload=True) if conflict else None,
        )
    done = TRANSITION_DONE[incident.status]
    if incident.status == Status.ON_HOLD:
        done += f" ({incident.get_hold_reason_display().lower()})"
    messages.success(request, f"{incident.number} {done}.")
    return redirect("agent:incident", number=number)


@agent_required
@require_POST
def link_parent(request, number: str):
    """Link the incident under a parent (by number), or unlink it when the number is empty."""
    incident = _incident_or_404(request, number)
    form = ParentLinkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "parent: give the parent's number and the version you read")
        return redirect("agent:incident", number=number)
    raw = form.cleaned_data["parent"].strip()
    parent = None
    if raw:
        parent_number = number_of(raw) or raw.upper()
        parent = incidents_visible_to(request.user).filter(number=parent_number).first()
        if parent is None:
            messages.error(request, f"parent: there is no incident {raw}")
            return redirect("agent:incident", number=number)
    try:
        services.incident_update(incident_id=incident.id, actor=request.user,
                                 version=form.cleaned_data["version"], parent=parent)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Linked to {parent.number} as its parent." if parent
                         else "Unlinked from its parent incident.")
    return redirect("agent:incident", number=number)


@agent_required
@require_GET
def canned(request, number: str, canned_id: int):
    """A canned response filled in for this incident, as plain text for the reply box."""
    incident = _incident_or_404(request, number)
    response = get_object_or_404(workspace.canned_responses_for(request.user), id=canned_id)
    text = services.canned_render(response.body, incident=incident, agent=request.user)
    return HttpResponse(text, content_type="text/plain; charset=utf-8")



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
