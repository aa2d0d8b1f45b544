"""Problems in the agent workspace (/agent/problems/): queues, the problem page with its analysis, linked
incidents and actions, the new-problem form, the measures page, and what problems adds to incidents (the bulk
"Create problem", "Apply workaround", "Link to problem").

Reads go through problems.selectors / problems.workspace, writes through problems.services, one service per
POST. A refused write draws the page again with the reason (400 naming the field, 409 for a transition the table
refuses or a stale version) and nothing saved."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from incidents.models import Category, Incident, ResolutionCode
from incidents.search import number_of, search_filter
from incidents.selectors import incidents_visible_to
from incidents.states import OPEN as INCIDENT_OPEN
from problems import services, workspace
from problems.models import Problem
from problems.notes import problem_note_add
from problems.selectors import problems_for
from problems.states import ALLOWED, OPEN, Status
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
from servicedesk.models import ConfigurationItem, Service, Team
from servicedesk.workspace import agent_render, agent_required, safe_next, timeline_context

PAGE_SIZE = 50
PRIORITY_CHOICES = [(1, "1 High"), (2, "2 Medium"), (3, "3 Low")]

TEXT_SECTIONS = [
    ("root_cause", "Root cause", "Not found yet."),
    ("workaround", "Workaround", "None recorded: with one, matching incidents can be answered straight away."),
    ("permanent_fix", "Permanent fix", "Not decided yet."),
]

# How each move of problems.states.ALLOWED is offered (label, icon, button style); resolve has its own form.
MOVES = {
    Status.INVESTIGATING: ("Investigate", "i-search", "primary"),
    Status.KNOWN_ERROR: ("Mark known error", "i-book", ""),
    Status.CLOSED: ("Close", "i-lock", ""),
}


def _problem_or_404(user, number: str) -> Problem:
    found = problems_for(user).filter(number=number.upper()).first()
    if found is None:
        raise Http404("No such problem")
    return found


def _actions(problem) -> list[dict]:
    """The status buttons, drawn from the transition table; the services decide."""
    allowed = ALLOWED[problem.status]
    actions = []
    for to in (Status.INVESTIGATING, Status.KNOWN_ERROR, Status.CLOSED):
        if to in allowed:
            label, icon, style = MOVES[to]
            if to == Status.INVESTIGATING and problem.status != Status.NEW:
                label = "Reopen" if problem.status == Status.RESOLVED else "Back to investigating"
            actions.append({"to": to, "label": label, "icon": icon, "style": style})
    return actions


def _timeline_spelled(entries: list) -> list:
    """Timeline entries with their status changes spelled."""
    statuses = dict(Status.choices)
    for entry in entries:
        changes = (entry.data or {}).get("changes") or {} if entry.kind == "change" else {}
        entry.change_list = [
            (name.replace("_", " ").capitalize(),
             statuses.get(c.get("old"), c.get("old")) if name == "status" else c.get("old"),
             statuses.get(c.get("new"), c.get("new")) if name == "status" else c.get("new"))
            for name, c in changes.items() if isinstance(c, dict)
        ]
    return entries


def _render_problem(request, problem, *, status: int = 200, **extra):
    links = list(problem.incident_links.select_related("incident", "linked_by").order_by("linked_at", "id"))
    analysis = problem.analysis or {}
    fishbone = analysis.get("fishbone") or {}
    context = {
        "problem": problem,
        "actions": _actions(problem),
        "can_resolve": Status.RESOLVED in ALLOWED[problem.status],
        "links": links,
        "related": list(problem.related.only("id", "number", "title", "status").order_by("number")),
        "services_list": list(problem.services.only("id", "name")),
        "cis_list": list(problem.configuration_items.only("id", "name")),
        "five_whys": analysis.get("five_whys") or [],
        "five_whys_text": "\n".join(analysis.get("five_whys") or []),
        "fishbone": sorted(fishbone.items()),
        "fishbone_text": "\n".join(f"{cat}: {', '.join(causes)}" for cat, causes in sorted(fishbone.items())),
        "analysis_timeline": analysis.get("timeline") or [],
        "analysis_timeline_text": "\n".join(f"{line.get('at', '')} | {line.get('what', '')}"
                                            for line in analysis.get("timeline") or []),
        "chart": workspace.incidents_over_time(problem),
        **timeline_context(request, problem, reverse("agent:problem", args=[problem.number]), _timeline_spelled),
        "teams": list(Team.objects.order_by("name").only("id", "name")),
        "agents": list(_agents()),
        "categories": list(Category.objects.order_by("name").only("id", "name")),
        "priorities": PRIORITY_CHOICES,
        "resolution_codes": [(c.code, c.label) for c in ResolutionCode.objects.filter(active=True).order_by("order", "code")],
        "open": problem.status in OPEN,
    }
    context.update(extra)
    # A refused save shows what the agent typed, in the form that was open.
    drafts = extra.get("form_data") or {}
    open_form = extra.get("open_form", "")

    def draft(name, current):
        return drafts.get(name, current) if open_form == name else current

    context["text_sections"] = [
        {"name": name, "title": title, "hint": hint, "value": getattr(problem, name),
         "draft": draft(name, getattr(problem, name))}
        for name, title, hint in TEXT_SECTIONS
    ]
    for name in ("five_whys", "fishbone", "timeline"):
        key = "analysis_timeline_text" if name == "timeline" else f"{name}_text"
        context[key] = draft(name, context[key])
    return agent_render(request, "problems/agent_problem.html", context, current_nav="problem", status=status)


def _agents():
    from servicedesk.models import staff_role_users

    return get_user_model().objects.filter(staff_role_users(), is_active=True).order_by("username").only(
        "id", "username", "first_name", "last_name")


def _refused(request, number: str, exc: DomainError, *, open_form: str = "", data=None):
    """Nothing was saved: the page again with the reason; a conflict says to reload."""
    fresh = _problem_or_404(request.user, number)
    kind = "conflict" if isinstance(exc, StaleVersion) else "error"
    return _render_problem(request, fresh, status=exc.status_code,
                           alert={"kind": kind, "message": exc.message},
                           open_form="" if kind == "conflict" else open_form, form_data=data or {})


# --- queues ---------------------------------------------------------------------------------------


_STATUS = dict(Status.choices)
_PRIORITY = dict(PRIORITY_CHOICES)
EXPORT_COLUMNS = [
    Column("Number", lambda p: p.number, width=12),
    Column("Title", lambda p: p.title, width=44),
    Column("Status", lambda p: _STATUS.get(p.status, p.status), width=16),
    Column("Priority", lambda p: f"P{p.priority}", width=9),
    Column("Category", lambda p: p.category.name if p.category else "", width=20),
    Column("Team", lambda p: p.assignment_group.name if p.assignment_group else "", width=20),
    Column("Owner", lambda p: person_name(p.assignee), width=20),
    Column("Linked incidents", lambda p: p.incident_count, "int", width=16),
    Column("Workaround", lambda p: "yes" if p.workaround else "", width=12),
    Column("Change", lambda p: p.change_reference, width=14),
    Column("Created", lambda p: p.created_at, "datetime"),
    Column("Updated", lambda p: p.updated_at, "datetime"),
    Column("Known error since", lambda p: p.known_error_at, "datetime"),
    Column("Resolved", lambda p: p.resolved_at, "datetime"),
    Column("Closed", lambda p: p.closed_at, "datetime"),
]


@agent_required
@require_GET
def queue(request, key: str = "open"):
    """The first PAGE_SIZE problems of a queue; ?export=csv|xlsx downloads every one of the same query."""
    found = workspace.QUEUE_BY_KEY.get(key)
    if found is None:
        raise Http404("No such queue")
    try:
        fmt = export_format(request)
    except InvalidInput as exc:
        return export_refused(exc)
    rows = workspace.queue_queryset(request.user, found.key)
    if fmt:
        return export_response(filename=f"problems-{found.key}-{timezone.localdate().isoformat()}", fmt=fmt,
                               columns=EXPORT_COLUMNS, sheet=found.label,
                               rows=rows_of(rows.defer("root_cause", "analysis", "permanent_fix",
                                                       "resolution_notes", "description")))
    problems = list(rows[:PAGE_SIZE])
    return agent_render(request, "problems/agent_queue.html", {
        "queue": found, "problems": problems, "page_size": PAGE_SIZE, "page_size_text": str(PAGE_SIZE),
        "export": export_links(request.path, request.GET)}, current_nav=f"problems:{found.key}")


# --- one problem ----------------------------------------------------------------------------------


@agent_required
@require_GET
def problem_page(request, number: str):
    return _render_problem(request, _problem_or_404(request.user, number))


def _clean_int(value, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name}: a whole number from {low} to {high}", field=name) from None
    if not low <= number <= high:
        raise InvalidInput(f"{name}: a whole number from {low} to {high}", field=name)
    return number


def _version(post) -> int | None:
    raw = post.get("version")
    return int(raw) if raw and raw.isdigit() else None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def analysis_from_form(post, current: dict) -> dict:
    """The analysis as the page edits it: five whys one per line (in order), fishbone one cause category per line
    ("Category: cause, cause"), timeline one dated line each ("2026-11-02 09:10 | what happened")."""
    analysis = {"five_whys": current.get("five_whys") or [], "fishbone": current.get("fishbone") or {},
                "timeline": current.get("timeline") or []}
    if "five_whys" in post:
        analysis["five_whys"] = _lines(post["five_whys"])
    if "fishbone" in post:
        fishbone: dict[str, list[str]] = {}
        for line in _lines(post["fishbone"]):
            category, sep, causes = line.partition(":")
            if not sep or not category.strip():
                raise InvalidInput(f'fishbone: "{line}" must read "Category: cause, cause"', field="fishbone")
            fishbone.setdefault(category.strip(), []).extend(c.strip() for c in causes.split(",") if c.strip())
        analysis["fishbone"] = fishbone
    if "timeline" in post:
        timeline = []
        for line in _lines(post["timeline"]):
            at, sep, what = line.partition("|")
            if not sep or not at.strip() or not what.strip():
                raise InvalidInput(f'timeline: "{line}" must read "when | what happened"', field="timeline")
            timeline.append({"at": at.strip(), "what": what.strip()})
        analysis["timeline"] = timeline
    return analysis


TEXT_FIELDS = ("title", "description", "root_cause", "workaround", "permanent_fix", "change_reference")


def changes_from_form(post, problem) -> dict:
    """Only the fields the submitted form carries: each in-place form sends its own section."""
    changes = {name: post[name].strip() for name in TEXT_FIELDS if name in post}
    for name in ("impact", "urgency"):
        if name in post:
            changes[name] = _clean_int(post[name], name, 1, 3)
    if "category" in post:
        changes["category"] = Category.objects.filter(id=post["category"]).first() if post["category"] else None
        if post["category"] and changes["category"] is None:
            raise InvalidInput(f"category: there is no category {post['category']}", field="category")
    if "assignment_group" in post:
        team = Team.objects.filter(id=post["assignment_group"]).first() if post["assignment_group"] else None
        if post["assignment_group"] and team is None:
            raise InvalidInput(f"assignment_group: there is no team {post['assignment_group']}",
                               field="assignment_group")
        changes["assignment_group"] = team
    if "assignee" in post:
        person = _agents().filter(username=post["assignee"]).first() if post["assignee"] else None
        if post["assignee"] and person is None:
            raise InvalidInput(f"assignee: there is no agent {post['assignee']}", field="assignee")
        changes["assignee"] = person
    if any(name in post for name in ("five_whys", "fishbone", "timeline")):
        changes["analysis"] = analysis_from_form(post, problem.analysis or {})
    return changes


@agent_required
@require_POST
def update(request, number: str):
    """One section of the page saved (facts, owner, root cause, an analysis section, workaround, fix...)."""
    problem = _problem_or_404(request.user, number)
    section = request.POST.get("section", "")
    try:
        changes = changes_from_form(request.POST, problem)
        services.problem_update(problem_id=problem.id, actor=request.user, version=_version(request.POST), **changes)
    except DomainError as exc:
        return _refused(request, number, exc, open_form=section, data=request.POST)
    messages.success(request, "Saved.")
    return redirect(f"{reverse('agent:problem', kwargs={'number': problem.number})}#{section or 'top'}")


@agent_required
@require_POST
def transition(request, number: str):
    problem = _problem_or_404(request.user, number)
    to = request.POST.get("to", "")
    common = {"problem_id": problem.id, "actor": request.user, "version": _version(request.POST),
              "reason": request.POST.get("reason", "").strip()}
    try:
        if to == Status.INVESTIGATING:
            done = (services.problem_investigate(**common) if problem.status == Status.NEW
                    else services.problem_reopen(**common))
        elif to == Status.KNOWN_ERROR:
            done = services.problem_known_error(**common)
        elif to == Status.CLOSED:
            done = services.problem_close(**common)
        else:
            raise InvalidInput(f"status: {to or 'nothing'} is not decided with this button", field="status")
    except DomainError as exc:
        return _refused(request, number, exc)
    messages.success(request, f"{done.number} is now: {done.get_status_display()}.")
    return redirect("agent:problem", number=done.number)


@agent_required
@require_POST
def resolve(request, number: str):
    problem = _problem_or_404(request.user, number)
    code = request.POST.get("resolution_code") or "fixed"
    try:
        done = services.problem_resolve(
            problem_id=problem.id, actor=request.user, version=_version(request.POST),
            resolution_notes=request.POST.get("resolution_notes", "").strip(), resolution_code=code,
            resolve_incidents=request.POST.get("resolve_incidents") in ("on", "true", "1"),
        )
    except DomainError as exc:
        return _refused(request, number, exc, open_form="resolve", data=request.POST)
    notice = f"{done.number} is resolved."
    if request.POST.get("resolve_incidents"):
        notice += " Its open incidents are being resolved."
    messages.success(request, notice)
    return redirect("agent:problem", number=done.number)


def _incidents_named(user, text_or_list) -> tuple[list[Incident], list[str]]:
    """The incidents the numbers name (INC0001042, inc1042, 1042), and the words that name none."""
    raw = text_or_list if isinstance(text_or_list, list) else text_or_list.replace(",", " ").split()
    numbers, unknown = [], []
    for word in raw:
        number = number_of(word)
        (numbers.append(number) if number else unknown.append(word))
    found = {i.number: i for i in incidents_visible_to(user).filter(number__in=numbers)}
    unknown += [n for n in numbers if n not in found]
    return [found[n] for n in dict.fromkeys(numbers) if n in found], unknown


@agent_required
@require_POST
def link(request, number: str):
    """Link incidents by number (typed, or ticked in the search results)."""
    problem = _problem_or_404(request.user, number)
    incidents, unknown = _incidents_named(request.user, request.POST.getlist("numbers") or
                                          request.POST.get("incidents", ""))
    if unknown or not incidents:
        what = ", ".join(unknown) if unknown else "nothing"
        return _refused(request, number, InvalidInput(f"incidents: no such incident: {what}", field="incidents"),
                        open_form="link", data=request.POST)
    try:
        added = services.problem_link_incidents(problem_id=problem.id, actor=request.user, incidents=incidents)
    except DomainError as exc:
        return _refused(request, number, exc, open_form="link", data=request.POST)
    messages.success(request, f"{added} incident{'s' if added != 1 else ''} linked.")
    return redirect(f"{reverse('agent:problem', kwargs={'number': problem.number})}#incidents")


@agent_required
@require_POST
def unlink(request, number: str, incident: str):
    problem = _problem_or_404(request.user, number)
    found = incidents_visible_to(request.user).filter(number=incident.upper()).first()
    if found is None:
        raise Http404("No such incident")
    try:
        services.problem_unlink_incident(problem_id=problem.id, actor=request.user, incident=found)
    except DomainError as exc:
        return _refused(request, number, exc)
    messages.success(request, f"{found.number} unlinked.")
    return redirect(f"{reverse('agent:problem', kwargs={'number': problem.number})}#incidents")


@agent_required
@require_GET
def incident_search(request, number: str):
    """htmx: open incidents matching the words, not yet linked to this problem, to tick and link."""
    problem = _problem_or_404(request.user, number)
    q = (request.GET.get("q") or "").strip()[:200]
    results = []
    if q:
        found = search_filter(incidents_visible_to(request.user).filter(status__in=sorted(INCIDENT_OPEN)), q,
                              include_internal=True)
        results = list(found.exclude(problem_links__problem=problem).only(
            "id", "number", "title", "status", "created_at").order_by("-created_at")[:15])
    return render(request, "problems/_incident_results.html", {"problem": problem, "results": results, "q": q})


@agent_required
@require_POST
def link_problem(request, number: str):
    problem = _problem_or_404(request.user, number)
    other = problems_for(request.user).filter(number=request.POST.get("other", "").strip().upper()).first()
    try:
        if other is None:
            raise InvalidInput(f"other: no such problem: {request.POST.get('other', '')}", field="other")
        services.problem_link_problem(problem_id=problem.id, other_id=other.id, actor=request.user)
    except DomainError as exc:
        return _refused(request, number, exc, open_form="related", data=request.POST)
    messages.success(request, f"Linked to {other.number}.")
    return redirect(f"{reverse('agent:problem', kwargs={'number': problem.number})}#related")


@agent_required
@require_POST
def note(request, number: str):
    problem = _problem_or_404(request.user, number)
    try:
        problem_note_add(problem_id=problem.id, author=request.user, body=request.POST.get("body", ""))
    except DomainError as exc:
        return _refused(request, number, exc, open_form="note", data=request.POST)
    messages.success(request, "Note added.")
    return redirect(f"{reverse('agent:problem', kwargs={'number': problem.number})}#timeline")


# --- new problem ----------------------------------------------------------------------------------


class NewProblemForm(forms.Form):
    title = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))
    impact = forms.TypedChoiceField(choices=PRIORITY_CHOICES, coerce=int, initial=3)
    urgency = forms.TypedChoiceField(choices=PRIORITY_CHOICES, coerce=int, initial=3)
    category = forms.ModelChoiceField(queryset=Category.objects.order_by("name"), required=False)
    services = forms.ModelMultipleChoiceField(queryset=Service.objects.order_by("name"), required=False)
    configuration_items = forms.ModelMultipleChoiceField(queryset=ConfigurationItem.objects.order_by("name"),
                                                         required=False, label="Configuration items")
    assignment_group = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False,
                                              label="Owner team")
    incidents = forms.CharField(required=False, label="Incidents",
                                help_text="Numbers of the incidents it explains, e.g. INC0001042 INC0001043")


@agent_required
def new(request):
    form = NewProblemForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        incidents, unknown = _incidents_named(request.user, data.pop("incidents"))
        if unknown:
            form.add_error("incidents", f"No such incident: {', '.join(unknown)}")
        else:
            try:
                problem = services.problem_create(created_by=request.user, incidents=incidents, **data)
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, f"{problem.number} created.")
                return redirect("agent:problem", number=problem.number)
    if request.method == "POST":
        status = 400
    return agent_render(request, "problems/agent_new.html", {"form": form}, current_nav="problems:new",
                        status=status)


# --- from incidents (the bulk action, the incident page's cards) ------------------------------------


@agent_required
@require_POST
def from_incidents(request):
    """The incident queue's "Create problem": a problem titled after the first checked incident, with the same
    category, service and CI where they all agree, linking every checked incident; then its page to refine."""
    back = safe_next(request, reverse("agent:dashboard"))
    incidents, unknown = _incidents_named(request.user, request.POST.getlist("numbers"))
    if not incidents:
        messages.error(request, "Nothing created: tick the incidents the problem explains.")
        return redirect(back)
    incidents.sort(key=lambda i: i.number)  # the oldest first: the title and description read in order
    first = incidents[0]
    same = {name: getattr(first, f"{name}_id") for name in ("category", "service", "configuration_item")
            if all(getattr(i, f"{name}_id") == getattr(first, f"{name}_id") for i in incidents)}
    try:
        problem = services.problem_create(
            title=first.title, created_by=request.user,
            description="Raised from " + ", ".join(i.number for i in incidents) + ".",
            impact=min(i.impact for i in incidents), urgency=min(i.urgency for i in incidents),
            category=first.category if same.get("category") else None,
            services=[first.service] if same.get("service") else [],
            configuration_items=[first.configuration_item] if same.get("configuration_item") else [],
            incidents=incidents,
        )
    except DomainError as exc:
        messages.error(request, f"Nothing created: {exc.message}")
        return redirect(back)
    messages.success(request, f"{problem.number} created from {len(incidents)} incident"
                              f"{'s' if len(incidents) != 1 else ''}.")
    for word in unknown:
        messages.error(request, f"{word}: no such incident, not linked")
    return redirect("agent:problem", number=problem.number)


def _incident_or_404(user, number: str) -> Incident:
    found = incidents_visible_to(user).filter(number=number.upper()).first()
    if found is None:
        raise Http404("No such incident")
    return found


@agent_required
@require_POST
def apply_workaround(request, number: str, problem_number: str):
    """From the incident page's "Known errors" card: the workaround as a public reply, the incident linked."""
    incident = _incident_or_404(request.user, number)
    problem = _problem_or_404(request.user, problem_number)
    try:
        services.workaround_apply(problem_id=problem.id, incident=incident, actor=request.user)
    except DomainError as exc:
        messages.error(request, f"Not applied: {exc.message}")
    else:
        messages.success(request, f"Workaround of {problem.number} sent to the requester; {incident.number} linked.")
    return redirect("agent:incident", number=incident.number)


@agent_required
@require_POST
def link_incident(request, number: str):
    """From the incident page: link this incident to a problem named by number (or picked from the cards)."""
    incident = _incident_or_404(request.user, number)
    problem = problems_for(request.user).filter(number=request.POST.get("problem", "").strip().upper()).first()
    if problem is None:
        messages.error(request, f"Not linked: no such problem: {request.POST.get('problem', '') or 'none given'}")
        return redirect("agent:incident", number=incident.number)
    try:
        services.problem_link_incidents(problem_id=problem.id, actor=request.user, incidents=[incident])
    except DomainError as exc:
        messages.error(request, f"Not linked: {exc.message}")
    else:
        messages.success(request, f"{incident.number} linked to {problem.number}.")
    return redirect("agent:incident", number=incident.number)


# --- measures -------------------------------------------------------------------------------------


@agent_required
@require_GET
def measures(request):
    return agent_render(request, "problems/agent_measures.html", {"m": workspace.measures(request.user)},
                        current_nav="problems:measures")
