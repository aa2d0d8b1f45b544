"""Problems in the agent workspace: the "Problems" queues, their counts (one query), the linked-incident chart
and the measures. Every query starts from problems.selectors.problems_for (agents, managers, admins only)."""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Avg, Count, F, Max, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from problems.models import Problem, ProblemIncident
from problems.selectors import problems_for
from problems.states import OPEN, Status
from servicedesk.models import TeamMembership

RECENT_DAYS = 30


@dataclass(frozen=True)
class Queue:
    key: str
    label: str
    icon: str
    hint: str


# "Problems" in every label: on a phone the sidebar loses its headings and the incidents' queues say "My ...".
QUEUES = [
    Queue("open", "Open problems", "i-circle-dot", "Every problem not yet resolved"),
    Queue("mine", "My problems", "i-user", "Open problems I own"),
    Queue("team", "Team problems", "i-users", "Open problems owned by one of my teams"),
    Queue("known", "Known errors", "i-info", "Problems whose root cause or workaround is known"),
    Queue("resolved", "Resolved recently", "i-check-circle", f"Resolved in the last {RECENT_DAYS} days"),
]
QUEUE_BY_KEY = {q.key: q for q in QUEUES}


def queue_condition(user, key: str, now=None) -> Q:
    now = now or timezone.now()
    open_q = Q(status__in=sorted(OPEN))
    return {
        "open": open_q,
        "mine": open_q & Q(assignee=user),
        "team": open_q & Q(assignment_group__in=TeamMembership.objects.filter(user=user).values("team_id")),
        "known": Q(status=Status.KNOWN_ERROR),
        "resolved": Q(status__in=(Status.RESOLVED, Status.CLOSED), resolved_at__gte=now - timedelta(days=RECENT_DAYS)),
    }[key]


PERSONAL_COUNTS = ("mine", "team")  # the rest are the same for every agent (agents see every problem)


def queue_counts(user, now=None, keys=None) -> dict[str, int]:
    """Every queue's count, or those in `keys`, in one aggregate query."""
    return problems_for(user).order_by().aggregate(
        **{q.key: Count("id", filter=queue_condition(user, q.key, now)) for q in QUEUES
           if keys is None or q.key in keys})


def queue_queryset(user, key: str) -> QuerySet[Problem]:
    """The problems of one queue with what the table shows, in a constant number of queries: the owner and
    team joined, the linked incidents counted in the same query."""
    return (problems_for(user).filter(queue_condition(user, key))
            .annotate(incident_count=Count("incident_links", distinct=True))
            .order_by("priority", "-created_at", "-id"))


def incidents_over_time(problem) -> dict:
    """Linked incidents per day of their creation (the incident's own date: when the trouble happened), for
    the page's chart; one query."""
    rows = (ProblemIncident.objects.filter(problem=problem).annotate(day=TruncDate("incident__created_at"))
            .values("day").annotate(n=Count("id")).order_by("day"))
    return {"labels": [r["day"].isoformat() for r in rows], "values": [r["n"] for r in rows]}


# --- measures ---------------------------------------------------------------------------------------

AGE_BUCKETS = [("under 7 days", 0, 7), ("7-30 days", 7, 30), ("30-90 days", 30, 90), ("over 90 days", 90, None)]


def _days(delta) -> float | None:
    return round(delta.total_seconds() / 86400, 1) if delta is not None else None


def _spell(delta) -> str:
    """A mean duration for people: days, or hours (minutes) when shorter than a day (an hour)."""
    if delta is None:
        return ""
    seconds = delta.total_seconds()
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{max(round(seconds / 60), 1)} min"


def measures(user, now=None) -> dict:
    """The problem-management figures, each from one query over the problems `user` may see."""
    now = now or timezone.now()
    visible = problems_for(user).order_by()
    by_age = visible.filter(status__in=sorted(OPEN)).aggregate(**{
        f"age{i}": Count("id", filter=Q(created_at__lte=now - timedelta(days=low))
                     & (Q(created_at__gt=now - timedelta(days=high)) if high else Q()))
        for i, (_, low, high) in enumerate(AGE_BUCKETS)
    })
    per_problem = visible.annotate(n=Count("incident_links")).aggregate(
        problems=Count("id"), average=Avg("n"), most=Max("n"))
    times = visible.aggregate(
        to_known_error=Avg(F("known_error_at") - F("created_at"), filter=Q(known_error_at__isnull=False)),
        to_resolve=Avg(F("resolved_at") - F("created_at"), filter=Q(resolved_at__isnull=False)),
        known_errors=Count("id", filter=Q(known_error_at__isnull=False)),
        resolved=Count("id", filter=Q(resolved_at__isnull=False)),
    )
    recurrences = list(
        ProblemIncident.objects.filter(problem__in=visible.values("id"), problem__resolved_at__isnull=False,
                                       linked_at__gt=F("problem__resolved_at"))
        .values("problem__number", "problem__title").annotate(n=Count("id")).order_by("-n", "problem__number")[:20]
    )
    return {
        "by_age": [(label, by_age[f"age{i}"]) for i, (label, _, _) in enumerate(AGE_BUCKETS)],
        "open_total": sum(by_age.values()),
        "problems": per_problem["problems"],
        "incidents_per_problem": round(per_problem["average"] or 0, 1),
        "most_incidents": per_problem["most"] or 0,
        "days_to_known_error": _days(times["to_known_error"]),
        "days_to_resolve": _days(times["to_resolve"]),
        "to_known_error": _spell(times["to_known_error"]),
        "to_resolve": _spell(times["to_resolve"]),
        "known_errors": times["known_errors"],
        "resolved": times["resolved"],
        "recurrences": recurrences,
    }


