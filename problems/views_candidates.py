"""The candidate review page (/agent/problems/candidates/): open candidates the detector proposed, with their
evidence and incidents; managers and admins accept (a problem is created, the incidents linked) or dismiss.
Agents see the page without the buttons; requesters get 403 (agent_required). Writes go through
problems.candidates."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from problems.candidates import (
    can_decide,
    candidate_accept,
    candidate_dismiss,
    candidates_open_for,
)
from problems.models import DetectionSettings
from servicedesk.errors import DomainError
from servicedesk.workspace import agent_render, agent_required

PER_PAGE = 20


@agent_required
def candidates(request):
    page = Paginator(candidates_open_for(request.user), PER_PAGE).get_page(request.GET.get("page"))
    return agent_render(request, "problems/candidates.html", {
        "page": page, "candidates": page.object_list, "can_decide": can_decide(request.user),
        "settings": DetectionSettings.get(),
    }, current_nav="problems:candidates")


def _decide(request, candidate_id: int, decide):
    if not can_decide(request.user):
        raise PermissionDenied("Only managers and admins accept or dismiss problem candidates.")
    try:
        return decide(candidate_id=candidate_id, actor=request.user)
    except DomainError as error:
        messages.error(request, error.message[:1].upper() + error.message[1:] + ".")
        return None


@require_POST
@agent_required
def accept(request, candidate_id: int):
    problem = _decide(request, candidate_id, candidate_accept)
    if problem is None:
        return redirect("agent:problem_candidates")
    messages.success(request, f"{problem.number} recorded with {problem.incidents.count()} linked incidents.")
    try:
        return redirect(reverse("agent:problem", kwargs={"number": problem.number}))
    except NoReverseMatch:  # the problem page belongs to the workspace part of issue 9
        return redirect("agent:problem_candidates")


@require_POST
@agent_required
def dismiss(request, candidate_id: int):
    candidate = _decide(request, candidate_id, candidate_dismiss)
    if candidate is not None:
        messages.success(request, f"Dismissed: it is proposed again only if it grows past "
                                  f"{candidate.size_when_dismissed} incidents.")
    return redirect("agent:problem_candidates")
