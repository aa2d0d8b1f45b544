"""Writes of the agent workspace that are not incident changes: canned responses filled in for an incident and
an agent's personal saved views."""


from django.db import IntegrityError, transaction

from incidents.models import Incident, SavedView
from servicedesk.errors import InvalidInput


def canned_render(text: str, *, incident: Incident, agent) -> str:
    """Fill a canned response's placeholders; unknown ones are left as they are."""

    class Keep(dict):
        def __missing__(self, key):
            return "{" + key + "}"

    values = Keep(
        number=incident.number,
        title=incident.title,
        requester_first_name=incident.requester.first_name or incident.requester.username,
        requester_name=incident.requester.get_full_name() or incident.requester.username,
        agent_name=agent.get_full_name() or agent.username,
        service=incident.service.name if incident.service_id else "",
        status=incident.get_status_display(),
        priority=f"P{incident.priority}",
    )
    try:
        return text.format_map(values)
    except (ValueError, IndexError):
        return text


# --- personal views -------------------------------------------------------------------------------


def saved_view_create(*, owner, name: str, query: str) -> SavedView:
    """An agent's named set of filters and sort. A name the owner already uses is refused, even when a
    double submit races the form's own check (the unique constraint decides)."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("name: give the view a name", field="name")
    try:
        with transaction.atomic():
            return SavedView.objects.create(owner=owner, name=name[:80], query=query[:1000])
    except IntegrityError:
        raise InvalidInput("name: you already have a view with this name", field="name") from None


@transaction.atomic
def saved_view_delete(*, owner, view_id: int) -> SavedView:
    """Delete one of the owner's views; another agent's view is not found (the query filters by owner)."""
    view = SavedView.objects.select_for_update().get(owner=owner, id=view_id)
    view.delete()
    return view
