"""What managers do with the candidates the detector proposes (problems.detection), and the detector's beat
entry. candidate_accept creates the problem through problems.services.problem_create with the candidate's
incidents; candidate_dismiss remembers the size the manager saw, so the detector proposes it again only once
it grew past that. Managers and admins decide; agents only see candidates."""

from django.db import transaction
from django.utils import timezone

from problems.models import CandidateState, DetectionSettings, ProblemCandidate, ProblemIncident
from servicedesk.errors import NotAllowed, NotVisible, TransitionNotAllowed
from servicedesk.roles import Role, role_of
from servicedesk.schedules import beat_interval_apply
from servicedesk.services import audit_record

DETECT_TASK_NAME = "problems-detect"
DETECT_TASK = "problems.tasks.problems_detect"
DECIDERS = {Role.MANAGER, Role.ADMIN}


def can_decide(user) -> bool:
    return role_of(user) in DECIDERS


def _open_candidate(candidate_id: int, actor) -> ProblemCandidate:
    if not can_decide(actor):
        raise NotAllowed("only managers and admins accept or dismiss problem candidates")
    # Locked: the detector (which locks the candidates it rewrites) and a second manager wait for this decision.
    candidate = ProblemCandidate.objects.select_for_update().filter(id=candidate_id).first()
    if candidate is None:
        raise NotVisible("no such problem candidate")
    if candidate.state != CandidateState.OPEN:
        raise TransitionNotAllowed(f"this candidate is already {candidate.get_state_display().lower()}",
                                   field="state")
    return candidate


def _describe(candidate: ProblemCandidate) -> str:
    e = candidate.evidence or {}
    lines = [f"Proposed by problem detection ({e.get('rule', '?')} rule): {e.get('count', '?')} incidents "
             f"between {e.get('first_seen', '?')[:10]} and {e.get('last_seen', '?')[:10]}."]
    if e.get("shared"):
        lines.append(f"Shared: {e['shared']}.")
    if e.get("shared_terms"):
        lines.append(f"Shared terms: {', '.join(e['shared_terms'])}.")
    return "\n".join(lines)


@transaction.atomic
def candidate_accept(*, candidate_id: int, actor):
    """Create the problem with the candidate's incidents (those still linked to no problem) and mark the
    candidate accepted. Returns the problem."""
    from incidents.models import Incident
    from problems.services import problem_create

    candidate = _open_candidate(candidate_id, actor)
    incidents = list(Incident.objects.filter(problem_candidates=candidate)
                     .exclude(id__in=ProblemIncident.objects.values("incident_id")).order_by("id"))
    rule = (candidate.evidence or {}).get("rule")
    # The shared service (or CI) and category of a grouped candidate become the problem's.
    first = incidents[0] if incidents else None
    services = [first.service] if first and rule == "service" and first.service_id else []
    items = [first.configuration_item] if first and rule == "ci" and first.configuration_item_id else []
    category = first.category if first and rule in ("service", "ci") else None
    problem = problem_create(title=candidate.title, created_by=actor, description=_describe(candidate),
                             category=category, services=services, configuration_items=items, incidents=incidents)
    candidate.state = CandidateState.ACCEPTED
    candidate.problem = problem
    candidate.decided_by, candidate.decided_at = actor, timezone.now()
    candidate.save(update_fields=["state", "problem", "decided_by", "decided_at", "updated_at"])
    audit_record(actor=actor, action="problemcandidate.accepted", obj=candidate, changes={
        "before": {"state": CandidateState.OPEN},
        "after": {"state": CandidateState.ACCEPTED, "problem": problem.number,
                  "incidents": [i.number for i in incidents]},
    })
    return problem


@transaction.atomic
def candidate_dismiss(*, candidate_id: int, actor) -> ProblemCandidate:
    """Not a problem: the detector leaves it alone until it counts more incidents than now."""
    candidate = _open_candidate(candidate_id, actor)
    size = candidate.incidents.count()
    candidate.state = CandidateState.DISMISSED
    candidate.size_when_dismissed = size
    candidate.decided_by, candidate.decided_at = actor, timezone.now()
    candidate.save(update_fields=["state", "size_when_dismissed", "decided_by", "decided_at", "updated_at"])
    audit_record(actor=actor, action="problemcandidate.dismissed", obj=candidate, changes={
        "before": {"state": CandidateState.OPEN},
        "after": {"state": CandidateState.DISMISSED, "size_when_dismissed": size},
    })
    return candidate


def detection_schedule_apply(interval_minutes: int, *, apps=None) -> None:
    """Point beat's "problems-detect" entry (django-celery-beat, read by the DatabaseScheduler) at this
    interval, creating it when missing. Called when the detection settings are saved (admin) and by migration
    problems.0003_detection. `apps` is a migration's app registry."""
    beat_interval_apply(name=DETECT_TASK_NAME, task=DETECT_TASK, every=interval_minutes, period="minutes",
                        description="Finds clusters of recurring incidents and proposes problem candidates.",
                        apps=apps)


@transaction.atomic
def detection_settings_save(*, settings: DetectionSettings, actor) -> DetectionSettings:
    """Save the detection settings and keep the beat entry in step."""
    settings.save()
    detection_schedule_apply(settings.interval_minutes)
    return settings


def candidates_open_for(user):
    """Open candidates for the review page, newest change first, their incidents prefetched (a page costs the
    same queries whatever its size): agents, managers and admins; requesters none."""
    from django.db.models import Prefetch

    from incidents.models import Incident
    from servicedesk.roles import is_staff_role

    if user is None or not user.is_authenticated or not is_staff_role(user):
        return ProblemCandidate.objects.none()
    incidents = Incident.objects.only("id", "number", "title", "status", "created_at").order_by("-created_at", "-id")
    return (ProblemCandidate.objects.filter(state=CandidateState.OPEN).order_by("-updated_at", "-id")
            .prefetch_related(Prefetch("incidents", queryset=incidents)))
