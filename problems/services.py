"""Every write to a problem: one function per change, one transaction each.

Each function locks the problem row (servicedesk.tickets), checks the version when the caller sent one, checks
the transition table (problems.states), bumps the version, writes a timeline entry and an audit row. Side
effects leave through the transactional outbox: resolving with `resolve_incidents` queues
"problems.resolve_incidents", whose handler (problems.tasks) resolves each linked open incident through
incidents' own services after the commit. Incidents never import this app.
"""

from django.db import transaction
from django.utils import timezone

from incidents.models import Incident, ResolutionCode
from incidents.states import OPEN as INCIDENT_OPEN
from problems.models import Problem, ProblemIncident
from problems.search import SEARCHED, search_refresh
from problems.states import Status, check_transition
from servicedesk.errors import DomainError, InvalidInput, TransitionNotAllowed
from servicedesk.models import TeamMembership, TimelineEntry
from servicedesk.numbering import number_next
from servicedesk.outbox import outbox_enqueue
from servicedesk.roles import is_staff_role
from servicedesk.services import audit_record, priority_for, timeline_add, timeline_changes
from servicedesk.tickets import ticket_check_version, ticket_lock, ticket_save

RESOLVE_INCIDENTS = "problems.resolve_incidents"

EDITABLE = ("title", "description", "impact", "urgency", "category", "services", "configuration_items",
            "assignment_group", "assignee", "root_cause", "analysis", "workaround", "permanent_fix",
            "change_reference", "knowledge_article")
MANY = ("services", "configuration_items")
ANALYSIS_SECTIONS = ("five_whys", "fishbone", "timeline")


# --- checks ---------------------------------------------------------------------------------------


def _lock(problem_id: int) -> Problem:
    return ticket_lock(Problem, problem_id, "assignment_group", "assignee", "knowledge_article")


def _who(user) -> str:
    if user is None:
        return "someone"
    return user.get_full_name() or user.username


def _plain(value):
    if hasattr(value, "pk"):
        return str(value)
    return value


def analysis_check(analysis) -> dict:
    """The analysis as stored: {five_whys: [str], fishbone: {category: [str]}, timeline: [{at, what}]}.
    Missing sections are empty; anything else raises InvalidInput naming the section at fault."""
    if analysis is None:
        analysis = {}
    if not isinstance(analysis, dict):
        raise InvalidInput("analysis: give an object with five_whys, fishbone and timeline", field="analysis")
    unknown = sorted(set(analysis) - set(ANALYSIS_SECTIONS))
    if unknown:
        raise InvalidInput(f"analysis.{unknown[0]}: not a section (sections: {', '.join(ANALYSIS_SECTIONS)})",
                           field=f"analysis.{unknown[0]}")
    whys = analysis.get("five_whys") or []
    if not isinstance(whys, list) or not all(isinstance(why, str) for why in whys):
        raise InvalidInput("analysis.five_whys: give a list of answers (text), one per why",
                           field="analysis.five_whys")
    fishbone = analysis.get("fishbone") or {}
    if not isinstance(fishbone, dict) or not all(
        isinstance(category, str) and category.strip() and isinstance(causes, list)
        and all(isinstance(cause, str) for cause in causes)
        for category, causes in fishbone.items()
    ):
        raise InvalidInput("analysis.fishbone: give an object of cause category -> list of causes (text)",
                           field="analysis.fishbone")
    timeline = analysis.get("timeline") or []
    if not isinstance(timeline, list) or not all(
        isinstance(event, dict) and set(event) <= {"at", "what"} and isinstance(event.get("at"), str)
        and event.get("at", "").strip() and isinstance(event.get("what"), str) and event.get("what", "").strip()
        for event in timeline
    ):
        raise InvalidInput("analysis.timeline: give a list of {at, what} (when, and what happened; both text)",
                           field="analysis.timeline")
    return {
        "five_whys": [why.strip() for why in whys if why.strip()],
        "fishbone": {category.strip(): [cause.strip() for cause in causes if cause.strip()]
                     for category, causes in fishbone.items()},
        "timeline": [{"at": event["at"].strip(), "what": event["what"].strip()} for event in timeline],
    }


def _check_owner(assignee, team) -> None:
    if assignee is None:
        return
    if not is_staff_role(assignee):
        raise InvalidInput(f"assignee: {assignee.username} is not an agent", field="assignee")
    if team is not None and not TeamMembership.objects.filter(team=team, user=assignee).exists():
        raise InvalidInput(f"assignee: {assignee.username} is not a member of {team.name}", field="assignee")


def _check_scale(impact, urgency) -> int:
    return priority_for(impact=impact, urgency=urgency)  # InvalidInput naming impact or urgency


def _check_editable(problem: Problem) -> None:
    if problem.status == Status.CLOSED:
        raise TransitionNotAllowed(f"{problem.number} is closed: it cannot change", field="status")


# --- create ---------------------------------------------------------------------------------------


@transaction.atomic
def problem_create(*, title, created_by, description="", impact=3, urgency=3, category=None, services=(),
                   configuration_items=(), assignment_group=None, assignee=None, incidents=()) -> Problem:
    """Record a new problem (status new), optionally explaining some incidents already."""
    title = (title or "").strip()
    if not title:
        raise InvalidInput("title: say in a few words what keeps going wrong", field="title")
    if created_by is None or not is_staff_role(created_by):
        raise InvalidInput("created_by: only agents record problems", field="created_by")
    priority = _check_scale(impact, urgency)
    _check_owner(assignee, assignment_group)
    problem = Problem.objects.create(
        number=number_next(Problem.NUMBER_PREFIX), title=title[:200], description=description or "",
        requester=created_by, created_by=created_by, updated_by=created_by, impact=impact, urgency=urgency,
        priority=priority, category=category, assignment_group=assignment_group, assignee=assignee,
        status=Status.NEW,
    )
    if services:
        problem.services.set(services)
    if configuration_items:
        problem.configuration_items.set(configuration_items)
    timeline_add(ticket=problem, kind=TimelineEntry.Kind.SYSTEM, author=created_by, body="Problem recorded",
                 data={"event": "created", "priority": priority})
    audit_record(actor=created_by, action="problem.created", obj=problem,
                 changes={"priority": priority, "status": problem.status})
    search_refresh([problem.id])
    if incidents:
        _link(problem, created_by, list(incidents))
    return problem


# --- update ---------------------------------------------------------------------------------------


@transaction.atomic
def problem_update(*, problem_id, actor, version=None, **changes) -> Problem:
    """Change some of the descriptive fields and the analysis. Priority follows impact x urgency. Saving
    what is already there changes nothing (no version bump, no timeline entry)."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"{unknown[0]}: not editable here", field=unknown[0])
    problem = _lock(problem_id)
    ticket_check_version(problem, version)
    _check_editable(problem)
    if "title" in changes:
        changes["title"] = (changes["title"] or "").strip()[:200]
        if not changes["title"]:
            raise InvalidInput("title: cannot be empty", field="title")
    for name in ("description", "root_cause", "workaround", "permanent_fix", "change_reference"):
        if name in changes:
            changes[name] = (changes[name] or "").strip()
    if "change_reference" in changes and len(changes["change_reference"]) > 100:
        raise InvalidInput("change_reference: at most 100 characters", field="change_reference")
    if "analysis" in changes:
        changes["analysis"] = analysis_check(changes["analysis"])
    impact, urgency = changes.get("impact", problem.impact), changes.get("urgency", problem.urgency)
    priority = _check_scale(impact, urgency)
    _check_owner(changes.get("assignee", problem.assignee), changes.get("assignment_group", problem.assignment_group))
    if (problem.status == Status.KNOWN_ERROR and not changes.get("root_cause", problem.root_cause)
            and not changes.get("workaround", problem.workaround)):
        raise InvalidInput("root_cause: a known error keeps a root cause or a workaround; record one before "
                           "removing the other", field="root_cause")

    diff = {}
    for name in MANY:
        if name in changes:
            old = sorted(getattr(problem, name).values_list("name", flat=True))
            new_objects = list(changes[name] or [])
            new = sorted(getattr(obj, "name", str(obj)) for obj in new_objects)
            if old != new:
                getattr(problem, name).set(new_objects)
                diff[name] = (", ".join(old), ", ".join(new))
    fields = []
    for name, value in changes.items():
        if name in MANY:
            continue
        old = getattr(problem, name)
        if old != value:
            diff[name] = (_plain(old), _plain(value))
            setattr(problem, name, value)
            fields.append(name)
    if priority != problem.priority:
        diff["priority"] = (problem.priority, priority)
        problem.priority = priority
        fields.append("priority")
    if not diff:
        return problem
    ticket_save(problem, actor, fields)
    # The analysis is too long to repeat in the history: say it changed.
    shown = {name: (("…", "changed") if name == "analysis" else pair) for name, pair in diff.items()}
    timeline_changes(ticket=problem, author=actor, changes=shown)
    audit_record(actor=actor, action="problem.updated", obj=problem,
                 changes={name: {"old": old, "new": new} for name, (old, new) in diff.items()})
    if set(SEARCHED) & set(fields):
        search_refresh([problem.id])
    return problem


# --- lifecycle ------------------------------------------------------------------------------------


def _transition(problem: Problem, *, to: str, actor, reason: str = "", fields=(), body_extra: str = "") -> Problem:
    old = problem.status
    check_transition(old, to)
    problem.status = to
    ticket_save(problem, actor, ["status", *fields])
    body = f"{Status(old).label} → {Status(to).label}"
    if reason.strip():
        body += f": {reason.strip()}"
    if body_extra:
        body += body_extra
    event = {Status.INVESTIGATING: "reopened" if old == Status.RESOLVED else "investigating",
             Status.KNOWN_ERROR: "known_error", Status.RESOLVED: "resolved", Status.CLOSED: "closed"}[to]
    timeline_add(ticket=problem, kind=TimelineEntry.Kind.SYSTEM, author=actor, body=body,
                 data={"event": event, "old": old, "new": to, "reason": reason.strip()})
    audit_record(actor=actor, action=f"problem.{event}", obj=problem,
                 changes={"status": {"old": old, "new": to}, "reason": reason.strip()})
    return problem


@transaction.atomic
def problem_investigate(*, problem_id, actor, version=None, reason="") -> Problem:
    """Start (or go back to) the investigation of a new problem or a known error."""
    problem = _lock(problem_id)
    ticket_check_version(problem, version)
    if problem.status == Status.INVESTIGATING:
        return problem  # a repeated click changes nothing
    if problem.status == Status.RESOLVED:
        raise TransitionNotAllowed(f"{problem.number} is resolved: reopen it (and say why) to investigate again",
                                   field="status")
    return _transition(problem, to=Status.INVESTIGATING, actor=actor, reason=reason)


@transaction.atomic
def problem_known_error(*, problem_id, actor, version=None, reason="") -> Problem:
    """Mark the problem a known error: refused until a root cause or a workaround is recorded."""
    problem = _lock(problem_id)
    ticket_check_version(problem, version)
    if problem.status == Status.KNOWN_ERROR:
        return problem
    check_transition(problem.status, Status.KNOWN_ERROR)
    if not problem.root_cause.strip() and not problem.workaround.strip():
        raise InvalidInput("root_cause: record a root cause or a workaround (workaround) before marking "
                           f"{problem.number} a known error", field="root_cause")
    fields = []
    if problem.known_error_at is None:
        problem.known_error_at = timezone.now()
        fields.append("known_error_at")
    return _transition(problem, to=Status.KNOWN_ERROR, actor=actor, reason=reason, fields=fields)


@transaction.atomic
def problem_resolve(*, problem_id, actor, resolution_notes, resolution_code="fixed", resolve_incidents=False,
                    version=None) -> Problem:
    """Record the permanent resolution. With `resolve_incidents`, the linked open incidents are resolved after
    the commit by a worker (outbox "problems.resolve_incidents"), each through incidents' services with these
    notes and code, their requesters told by that service. The knowledge article of the known error, if any,
    gets a "Resolution" section."""
    notes = (resolution_notes or "").strip()
    code = (resolution_code or "").strip()
    codes = set(ResolutionCode.objects.filter(active=True).values_list("code", flat=True))
    errors = []
    if not notes:
        errors.append(("resolution_notes", "resolution_notes: say what fixed it for good"))
    if code not in codes:
        errors.append(("resolution_code", f"resolution_code: give one of {', '.join(sorted(codes)) or 'the codes in admin'}"))
    if errors:
        raise InvalidInput("; ".join(message for _, message in errors), field=errors[0][0])
    problem = _lock(problem_id)
    ticket_check_version(problem, version)
    check_transition(problem.status, Status.RESOLVED)
    problem.resolution_notes, problem.resolution_code, problem.resolved_at = notes, code, timezone.now()
    _transition(problem, to=Status.RESOLVED, actor=actor, fields=["resolution_notes", "resolution_code", "resolved_at"],
                body_extra=f" — {code}: {notes}")
    if resolve_incidents:
        count = problem.incidents.filter(status__in=sorted(INCIDENT_OPEN)).count()
        outbox_enqueue(RESOLVE_INCIDENTS, {"problem_id": problem.id, "actor_id": actor.id if actor else None})
        timeline_add(ticket=problem, kind=TimelineEntry.Kind.SYSTEM, author=actor,
                     body=f"Resolving its {count} open linked incident{'s' if count != 1 else ''}",
                     data={"event": "resolve_incidents", "count": count})
    if problem.knowledge_article_id:
        _publish_resolution(problem, actor)
    return problem


def _publish_resolution(problem: Problem, actor) -> None:
    from knowledge.services import article_update

    article = problem.knowledge_article
    section = f"## Resolution\n\n{problem.resolution_notes}\n\n(Resolved with problem {problem.number}.)"
    article_update(article_id=article.id, actor=actor, body=f"{article.body.rstrip()}\n\n{section}\n",
                   note=f"Resolution of {problem.number}")
    timeline_add(ticket=problem, kind=TimelineEntry.Kind.SYSTEM, author=actor,
                 body=f"Resolution published to {article.number}", data={"event": "kb_published",
                                                                          "article": article.number})


def resolve_linked_incidents(*, problem_id: int, actor=None) -> list[str]:
    """Resolve each open incident linked to the problem with its resolution (run by the outbox handler after
    the problem's commit). Each incident in its own transaction, through incidents' services; one that
    cannot be resolved any more (closed meanwhile) is left as it is. Returns the numbers resolved."""
    from incidents.services import incident_resolve, incident_resume

    problem = Problem.objects.get(id=problem_id)
    if problem.status not in (Status.RESOLVED, Status.CLOSED):
        return []  # reopened before the worker got to it: its resolution no longer holds
    done, skipped = [], []
    for incident_id, number, status in (problem.incidents.filter(status__in=sorted(INCIDENT_OPEN))
                                        .order_by("id").values_list("id", "number", "status")):
        try:
            with transaction.atomic():
                if status == "on_hold":
                    incident_resume(incident_id=incident_id, actor=actor,
                                    reason=f"Problem {problem.number} resolved")
                incident_resolve(incident_id=incident_id, actor=actor, resolution_code=problem.resolution_code,
                                 resolution_notes=f"Resolved with problem {problem.number}: "
                                                  f"{problem.resolution_notes}")
            done.append(number)
        except DomainError as error:  # e.g. the code was retired meanwhile: say so, resolve the others
            skipped.append(f"{number} ({error.message})")
    if done or skipped:
        body = f"Resolved {', '.join(done) or 'no incident'}"
        if skipped:
            body += f"; not resolved: {'; '.join(skipped)}"
        timeline_add(ticket=problem, kind=TimelineEntry.Kind.SYSTEM, author=actor, body=body,
                     data={"event": "incidents_resolved", "incidents": done, "skipped": skipped})
    return done


@transaction.atomic
def problem_close(*, problem_id, actor, version=None, reason="") -> Problem:
    problem = _lock(problem_id)
    ticket_check_version(problem, version)
    if problem.status == Status.CLOSED:
        return problem
    check_transition(problem.status, Status.CLOSED)
    problem.closed_at = timezone.now()
    return _transition(problem, to=Status.CLOSED, actor=actor, reason=reason, fields=["closed_at"])


@transaction.atomic
def problem_reopen(*, problem_id, actor, version=None, reason="") -> Problem:
    """A resolved problem came back: investigate again (the reason is required)."""
    problem = _lock(problem_id)
    ticket_check_version(problem, version)
    if problem.status != Status.RESOLVED:
        raise TransitionNotAllowed(
            f"only a resolved problem can be reopened; {problem.number} is {problem.get_status_display().lower()}",
            field="status")
    if not (reason or "").strip():
        raise InvalidInput("reason: say why the problem is reopened", field="reason")
    problem.resolved_at, problem.resolution_code, problem.resolution_notes = None, "", ""
    return _transition(problem, to=Status.INVESTIGATING, actor=actor, reason=reason,
                       fields=["resolved_at", "resolution_code", "resolution_notes"])


# --- links ----------------------------------------------------------------------------------------


def _link(problem: Problem, actor, incidents: list, *, how: str = "") -> int:
    if problem.status == Status.CLOSED:
        raise TransitionNotAllowed(f"{problem.number} is closed: link the incidents to an open problem",
                                   field="status")
    wanted = {incident.id: incident for incident in incidents}
    already = set(ProblemIncident.objects.filter(problem=problem, incident_id__in=wanted)
                  .values_list("incident_id", flat=True))
    new = [incident for incident_id, incident in sorted(wanted.items()) if incident_id not in already]
    if not new:
        return 0
    ProblemIncident.objects.bulk_create(
        [ProblemIncident(problem=problem, incident=incident, linked_by=actor if actor and actor.is_authenticated
                         else None) for incident in new], ignore_conflicts=True)
    numbers = [incident.number for incident in new]
    ticket_save(problem, actor, [])
    timeline_add(ticket=problem, kind=TimelineEntry.Kind.SYSTEM, author=actor,
                 body=f"Linked {', '.join(numbers)}{how}", data={"event": "linked", "incidents": numbers})
    for incident in new:
        timeline_add(ticket=incident, kind=TimelineEntry.Kind.SYSTEM, author=actor, internal=True,
                     body=f"Linked to problem {problem.number}: {problem.title}",
                     data={"event": "problem_linked", "problem": problem.number})
    audit_record(actor=actor, action="problem.linked", obj=problem, changes={"incidents": numbers})
    return len(new)


@transaction.atomic
def problem_link_incidents(*, problem_id, actor, incidents) -> int:
    """Link incidents to the problem (both timelines say so; the incident's entry is internal). Returns how
    many were newly linked: linking one already linked changes nothing."""
    problem = _lock(problem_id)
    return _link(problem, actor, list(incidents))


@transaction.atomic
def problem_unlink_incident(*, problem_id, actor, incident) -> None:
    problem = _lock(problem_id)
    _check_editable(problem)
    deleted, _ = ProblemIncident.objects.filter(problem=problem, incident=incident).delete()
    if not deleted:
        return
    ticket_save(problem, actor, [])
    timeline_add(ticket=problem, kind=TimelineEntry.Kind.SYSTEM, author=actor, body=f"Unlinked {incident.number}",
                 data={"event": "unlinked", "incidents": [incident.number]})
    timeline_add(ticket=incident, kind=TimelineEntry.Kind.SYSTEM, author=actor, internal=True,
                 body=f"No longer linked to problem {problem.number}",
                 data={"event": "problem_unlinked", "problem": problem.number})
    audit_record(actor=actor, action="problem.unlinked", obj=problem, changes={"incidents": [incident.number]})


@transaction.atomic
def problem_link_problem(*, problem_id, other_id, actor) -> None:
    """Record two problems as related (both ways)."""
    if problem_id == other_id:
        raise InvalidInput("related: a problem cannot be related to itself", field="related")
    first, second = sorted([problem_id, other_id])  # lock in id order: two opposite links never deadlock
    locked = {first: _lock(first), second: _lock(second)}
    problem, other = locked[problem_id], locked[other_id]
    if problem.related.filter(id=other.id).exists():
        return
    problem.related.add(other)
    for this, that in ((problem, other), (other, problem)):
        ticket_save(this, actor, [])
        timeline_add(ticket=this, kind=TimelineEntry.Kind.SYSTEM, author=actor,
                     body=f"Related to {that.number}: {that.title}", data={"event": "related", "problem": that.number})
    audit_record(actor=actor, action="problem.related", obj=problem, changes={"related": other.number})


# --- known errors on incidents --------------------------------------------------------------------


@transaction.atomic
def workaround_apply(*, problem_id, incident, actor) -> TimelineEntry:
    """Post the known error's workaround as a public reply on the incident (its requester is mailed by
    incidents' service) and link the incident to the problem."""
    from incidents.services import incident_comment_add

    problem = _lock(problem_id)
    if not problem.workaround.strip():
        raise InvalidInput(f"workaround: {problem.number} has no workaround recorded", field="workaround")
    if not isinstance(incident, Incident):
        raise InvalidInput("incident: give an incident", field="incident")
    entry = incident_comment_add(
        incident=incident, author=actor,
        body=f"{problem.workaround.strip()}\n\n(Workaround from known error {problem.number}: {problem.title})",
    )
    entry.data = {**(entry.data or {}), "workaround_of": problem.number}
    entry.save(update_fields=["data"])
    _link(problem, actor, [incident], how=" (workaround applied)")
    timeline_add(ticket=problem, kind=TimelineEntry.Kind.SYSTEM, author=actor,
                 body=f"Workaround applied to {incident.number}",
                 data={"event": "workaround_applied", "incident": incident.number})
    audit_record(actor=actor, action="problem.workaround_applied", obj=problem,
                 changes={"incident": incident.number})
    return entry
