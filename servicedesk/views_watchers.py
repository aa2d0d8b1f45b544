"""The "Watchers" card of a ticket's agent page, for every ticket type (incidents, requests): add a person by
username or email address, remove one. Agents only; the ticket is found through the registry with the agent's
permission (TicketKind.find), so the kernel imports no practice. Plain POST forms that come back to the
ticket's page with a message naming the field at fault, as the page's other side forms do."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from servicedesk.errors import DomainError
from servicedesk.registry import registry
from servicedesk.watchers import watcher_add, watcher_remove, watcher_user_find
from servicedesk.workspace import agent_required


def _ticket(request, kind: str, number: str):
    ticket_kind = registry.ticket_kind_named(kind)
    ticket = ticket_kind.find(request.user, number) if ticket_kind is not None else None
    if ticket is None:
        raise Http404("No such ticket")
    return ticket, ticket_kind.brief(ticket).url


@agent_required
@require_POST
def watcher_add_view(request, kind: str, number: str):
    ticket, back = _ticket(request, kind, number)
    text = (request.POST.get("user") or "").strip()
    if not text:
        messages.error(request, "user: give the username or email address of the person to add")
        return redirect(back)
    user = watcher_user_find(text)
    if user is None:
        messages.error(request, f"user: nobody active has the username or email address {text!r}")
        return redirect(back)
    try:
        watcher_add(ticket=ticket, user=user, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{user.get_full_name() or user.username} watches {ticket.number} now.")
    return redirect(back)


@agent_required
@require_POST
def watcher_remove_view(request, kind: str, number: str):
    ticket, back = _ticket(request, kind, number)
    username = (request.POST.get("user") or "").strip()
    user = get_user_model().objects.filter(username=username).first() if username else None
    if user is None or not watcher_remove(ticket=ticket, user=user, by=request.user):
        messages.error(request, f"user: {username or 'nobody'} does not watch {ticket.number}")
    else:
        messages.success(request, f"{user.get_full_name() or user.username} no longer watches {ticket.number}.")
    return redirect(back)
