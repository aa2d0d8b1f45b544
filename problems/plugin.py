"""What problem management adds to the kernel (servicedesk.registry). Imported once by ProblemsConfig.ready();
nothing in the kernel imports this app, and incidents never import it: problems shows itself on incident pages
through ticket panels and the incident queue's bulk bar through a TicketBulkAction."""

import re

from django.urls import NoReverseMatch, reverse

from servicedesk.registry import (
    DemoStep,
    NavItem,
    SearchProvider,
    SearchResults,
    TicketBrief,
    TicketBulkAction,
    TicketPanel,
    TicketRow,
    WorkspaceSection,
    registry,
)
from servicedesk.sidebar import queue_counts_split


def _nav(request, current: str) -> list[NavItem]:
    """The "Problems" links: the queues with their counts (one aggregate query), new, candidates, measures."""
    from problems import workspace

    counts = queue_counts_split(
        request, "problems", lambda keys: workspace.queue_counts(request.user, keys=keys),
        desk=[q.key for q in workspace.QUEUES if q.key not in workspace.PERSONAL_COUNTS],
        personal=workspace.PERSONAL_COUNTS)
    items = [
        NavItem(q.label, reverse("agent:problem_queue", kwargs={"key": q.key}), q.icon, count=counts.get(q.key),
                current=current == f"problems:{q.key}", testid=f"nav-problems-{q.key}")
        for q in workspace.QUEUES
    ]
    try:  # the candidate review page belongs to the detection part of issue 9
        items.append(NavItem("Candidates", reverse("agent:problem_candidates"), "i-sparkle",
                             current=current == "problems:candidates", testid="nav-problems-candidates"))
    except NoReverseMatch:
        pass
    items.append(NavItem("New problem", reverse("agent:problem_new"), "i-plus", current=current == "problems:new",
                         testid="nav-problems-new"))
    items.append(NavItem("Measures", reverse("agent:problem_measures"), "i-layers",
                         current=current == "problems:measures", testid="nav-problems-measures"))
    return items


def _linked(request, ticket: TicketBrief) -> dict:
    """The problems this incident is linked to (one query), and the form to link it to one."""
    from problems.selectors import problems_for

    problems = list(problems_for(request.user).filter(incident_links__incident__number=ticket.number)
                    .select_related(None).only("id", "number", "title", "status", "workaround").order_by("number"))
    return {"ticket": ticket, "problems": problems}


def _known_errors(request, ticket: TicketBrief) -> dict | None:
    """Known errors matching the incident's words (problems.search, ranked), not already linked to it, each with
    "Apply workaround" while the requester can still be answered; left out when none matches."""
    from problems.search import STOP_WORDS, known_errors_search

    if ticket.solved:
        return None
    # Any word of the title may match (websearch "or"), ranked: an incident says it in its own words.
    words = [w for w in dict.fromkeys(re.findall(r"\w{3,}", ticket.title.lower())) if w not in STOP_WORDS][:8]
    if not words:
        return None
    # The card shows a problem's own columns only: no joins (each would cost PostgreSQL planning time).
    found = list(known_errors_search(request.user, " or ".join(words)).select_related(None)
                 .only("id", "number", "title", "status", "workaround")
                 .exclude(incident_links__incident__number=ticket.number)[:3])
    if not found:
        return None
    return {"ticket": ticket, "problems": found}

NUMBER = re.compile(r"^\s*PRB0*(\d{1,9})\s*$", re.IGNORECASE)


def problem_url(number: str) -> str:
    """The agent page of a problem (the workspace's `agent:problem`), else its API representation."""
    try:
        return reverse("agent:problem", kwargs={"number": number})
    except NoReverseMatch:
        return reverse("problem-detail", kwargs={"number": number})


def _row(problem) -> TicketRow:
    return TicketRow(kind="problem", number=problem.number, title=problem.title, status=problem.status,
                     status_label=problem.get_status_display(), updated_at=problem.updated_at,
                     url=problem_url(problem.number), snippet=(problem.workaround or problem.root_cause)[:140])


def _search(user, q: str, limit: int) -> SearchResults:
    """Problems matching the words (title, root cause, workaround, description), best first; agents only
    (problems_for gives requesters none)."""
    from problems.search import search_ranked
    from problems.selectors import problems_for

    visible = problems_for(user)
    match = NUMBER.match(q or "")
    found = visible.filter(number__iexact=q.strip()) if match else search_ranked(visible, q)
    return SearchResults([_row(problem) for problem in found[:limit]])


def _find_number(user, text: str) -> str | None:
    """"PRB0000012" (or "prb12") opens that problem when `user` may see it (agents only)."""
    match = NUMBER.match(text or "")
    if not match:
        return None
    from problems.selectors import problems_for

    number = (problems_for(user).filter(number__regex=rf"^PRB0*{int(match.group(1))}$")
              .values_list("number", flat=True).first())
    return problem_url(number) if number else None


def _seed(options: dict) -> str:
    from problems.demo import seed_problems

    return seed_problems()


def _seed_detection(options: dict) -> str:
    from problems.demo_detection import seed_detection

    return seed_detection()


def register() -> None:
    """Each part of issue 9 registers its contributions here (API routes, workspace section, ticket panels on
    incidents, search, demo step)."""
    from problems import retention

    retention.register()  # retention: what goes and what stays (docs/retention.md)
    from django.db.models.signals import post_delete

    from problems.api import KnownErrorListView, ProblemViewSet
    from problems.models import Problem
    from problems.search import search_forget

    post_delete.connect(search_forget, sender=Problem, dispatch_uid="problems-search-forget")
    registry.api_route("problems", ProblemViewSet, basename="problem")
    registry.api_path("known-errors/", KnownErrorListView.as_view(), name="known-errors")
    registry.search_provider(SearchProvider("problems", "Problems", _search, _find_number, order=30,
                                            for_agents_only=True))
    registry.demo_step(DemoStep("problems", _seed, after=("incidents", "knowledge")))
    from problems.states import OPEN
    from servicedesk.metrics import ticket_metrics

    registry.metric(ticket_metrics("problem", Problem, OPEN))
    registry.workspace_section(WorkspaceSection("problems", "Problems", _nav, order=30))
    registry.ticket_panel(TicketPanel("problems-linked", "problems/_panel_linked.html", _linked,
                                      ticket_kinds=("incident",), order=5))
    registry.ticket_panel(TicketPanel("problems-known-errors", "problems/_panel_known_errors.html", _known_errors,
                                      ticket_kinds=("incident",), order=10))
    registry.ticket_bulk_action(TicketBulkAction("problem-from-incidents", "Create problem from these",
                                                 ticket_kinds=("incident",), url_name="agent:problem_from_incidents",
                                                 icon="i-plus"))
    registry.demo_step(DemoStep("problems-detection", _seed_detection, after=("problems",)))
