"""Approvals inboxes and the mailed links.

- /agent/approvals/ (workspace) and /portal/approvals/ (anyone signed in: approvers may be requesters by
  role): what waits for my decision, oldest first, with the request's answers and Approve / Reject (with a
  comment) buttons; admins see every pending approval, those of others marked "override".
- /portal/approvals/link/<token>/: the page the mailed Approve / Reject links open. The signed token is the
  authority (no sign-in needed) but expires; GET only shows a confirmation form (mail scanners prefetch
  links), POST decides, once.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from requests_app.approvals import LinkInvalid, answer_rows, approval_decide, is_admin, link_approval
from requests_app.selectors import approvals_pending_for
from servicedesk.errors import DomainError, InvalidInput, NotVisible
from servicedesk.exports import (
    Column,
    export_format,
    export_links,
    export_refused,
    export_response,
    person_name,
    rows_of,
)
from servicedesk.workspace import agent_render, agent_required, safe_next

INBOX_LIMIT = 200


def _inbox_rows(user) -> list[dict]:
    """Pending approvals for `user` with their answers: two queries whatever the number of rows."""
    rows = approvals_pending_for(user)[:INBOX_LIMIT]
    return [{"approval": a, "answers": answer_rows(a.request), "override": a.approver_id != user.id} for a in rows]


def _inbox_context(request) -> dict:
    rows = _inbox_rows(request.user)
    return {"rows": rows, "limit": INBOX_LIMIT, "admin": is_admin(request.user),
            "capped": len(rows) == INBOX_LIMIT}


EXPORT_COLUMNS = [
    Column("Request", lambda a: a.request.number, width=12),
    Column("Title", lambda a: a.request.title, width=40),
    Column("Item", lambda a: a.request.item.name, width=28),
    Column("Requester", lambda a: person_name(a.request.requester), width=20),
    Column("Level", lambda a: a.level, "int"),
    Column("Approver", lambda a: person_name(a.approver), width=20),
    Column("Waiting since", lambda a: a.created_at, "datetime"),
    Column("Reminded", lambda a: a.reminded_at, "datetime"),
]


@agent_required
def agent_approvals(request):
    """The inbox (the oldest INBOX_LIMIT); ?export=csv|xlsx downloads every pending approval of the same query
    (without the answers, which the inbox prefetches for its cards)."""
    try:
        fmt = export_format(request)
    except InvalidInput as exc:
        return export_refused(exc)
    if fmt:
        rows = approvals_pending_for(request.user).prefetch_related(None).defer("comment", "request__answers",
                                                                                 "request__description")
        return export_response(filename=f"approvals-pending-{timezone.localdate().isoformat()}", fmt=fmt,
                               columns=EXPORT_COLUMNS, rows=rows_of(rows),
                               sheet="Pending approvals")
    return agent_render(request, "requests_app/agent_approvals.html",
                        {**_inbox_context(request), "decide_url": "agent:approval-decide",
                         "export": export_links(request.path)}, current_nav="approvals")


@login_required
def portal_approvals(request):
    return render(request, "requests_app/portal_approvals.html",
                  {**_inbox_context(request), "decide_url": "portal:approval-decide"})


def _decide(request, approval_id: int, default_next: str):
    decision = request.POST.get("decision")
    if decision not in ("approve", "reject"):
        messages.error(request, "Choose Approve or Reject.")
        return redirect(safe_next(request, default_next))
    try:
        approval = approval_decide(approval_id=approval_id, actor=request.user, approve=decision == "approve",
                                   comment=request.POST.get("comment", ""))
    except NotVisible as error:
        raise Http404("No such approval for you") from error
    except DomainError as error:
        messages.error(request, str(error))
    else:
        verb = "approved" if decision == "approve" else "rejected"
        messages.success(request, f"{approval.request.number} {approval.request.item.name}: {verb}.")
    return redirect(safe_next(request, default_next))


@agent_required
@require_POST
def agent_approval_decide(request, approval_id: int):
    return _decide(request, approval_id, reverse("agent:approvals"))


@login_required
@require_POST
def portal_approval_decide(request, approval_id: int):
    return _decide(request, approval_id, reverse("portal:approvals"))


@never_cache
def approval_link(request, token: str):
    """GET: what is asked and a form to confirm (never decides). POST: decide as the link's approver."""
    try:
        approval = link_approval(token)
    except LinkInvalid as error:
        return render(request, "requests_app/approval_link.html", {"invalid": str(error), "expired": error.expired},
                      status=410 if error.expired else 404)
    if not approval.approver.is_active:
        return render(request, "requests_app/approval_link.html",
                      {"invalid": "This link is not valid any more."}, status=404)
    decision = request.POST.get("decision") if request.method == "POST" else request.GET.get("decision")
    context = {"approval": approval, "req": approval.request, "answers": answer_rows(approval.request),
               "decision": decision if decision in ("approve", "reject") else "", "token": token,
               "comment": request.POST.get("comment", "")}
    if approval.state != approval.State.PENDING:
        return render(request, "requests_app/approval_link.html", {**context, "done": True})
    if request.method != "POST":
        return render(request, "requests_app/approval_link.html", context)
    if context["decision"] not in ("approve", "reject"):
        return render(request, "requests_app/approval_link.html", {**context, "error": "Choose Approve or Reject."},
                      status=400)
    try:
        decided = approval_decide(approval_id=approval.id, actor=approval.approver,
                                  approve=context["decision"] == "approve", comment=context["comment"])
    except InvalidInput as error:
        return render(request, "requests_app/approval_link.html", {**context, "error": str(error)}, status=400)
    except DomainError as error:
        return render(request, "requests_app/approval_link.html", {**context, "error": str(error)}, status=409)
    return render(request, "requests_app/approval_link.html", {**context, "approval": decided, "done": True,
                                                               "just_decided": True})
