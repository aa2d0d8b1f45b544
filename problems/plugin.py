"""What problem management adds to the kernel (servicedesk.registry). Imported once by ProblemsConfig.ready();
nothing in the kernel imports this app."""

import re

from django.urls import NoReverseMatch, reverse

from servicedesk.registry import DemoStep, SearchProvider, SearchResults, TicketRow, registry

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
    registry.demo_step(DemoStep("problems-detection", _seed_detection, after=("problems",)))
