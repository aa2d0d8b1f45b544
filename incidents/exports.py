"""What a CSV/XLSX export of an incident queue holds (servicedesk.exports): the columns a manager wants in a
spreadsheet, read from the queue's own filtered queryset with the related names prefetched per chunk of rows,
so an export runs a fixed number of queries per 2,000 rows, never one per row."""

from django.db.models import Prefetch, QuerySet

from incidents.models import Category, Channel, Incident
from incidents.states import HoldReason, Status
from servicedesk.exports import Column, person_name

# The queue rows' own fields (incidents.selectors.ROW_FIELDS) and what only the spreadsheet shows.
EXPORT_FIELDS = (
    "id", "number", "title", "priority", "impact", "urgency", "status", "hold_reason", "major", "channel",
    "created_at", "updated_at", "first_responded_at", "resolved_at", "closed_at", "sla_due_at", "reopen_count",
    "requester_id", "assignee_id", "assignment_group_id", "service_id", "category_id",
)
_STATUS = dict(Status.choices)
_HOLD = dict(HoldReason.choices)
_CHANNEL = dict(Channel.choices)


def export_rows(queryset: QuerySet[Incident]) -> QuerySet[Incident]:
    """The queue's queryset (its permission, filters and order untouched) reading the export's columns, with
    the category's name prefetched alongside the names the queue already prefetches."""
    return queryset.only(*EXPORT_FIELDS).prefetch_related(
        Prefetch("category", queryset=Category.objects.only("id", "name")))


def _status(incident) -> str:
    label = _STATUS.get(incident.status, incident.status)
    if incident.hold_reason:
        return f"{label} ({_HOLD.get(incident.hold_reason, incident.hold_reason).lower()})"
    return label


COLUMNS = [
    Column("Number", lambda i: i.number, width=12),
    Column("Title", lambda i: i.title, width=48),
    Column("Status", _status, width=24),
    Column("Priority", lambda i: f"P{i.priority}", width=9),
    Column("Impact", lambda i: i.impact, "int"),
    Column("Urgency", lambda i: i.urgency, "int"),
    Column("Major", lambda i: "yes" if i.major else "", width=7),
    Column("Service", lambda i: i.service.name if i.service else "", width=24),
    Column("Category", lambda i: i.category.name if i.category else "", width=20),
    Column("Team", lambda i: i.assignment_group.name if i.assignment_group else "", width=20),
    Column("Assignee", lambda i: person_name(i.assignee), width=20),
    Column("Requester", lambda i: person_name(i.requester), width=20),
    Column("Channel", lambda i: _CHANNEL.get(i.channel, i.channel), width=11),
    Column("Created", lambda i: i.created_at, "datetime"),
    Column("Updated", lambda i: i.updated_at, "datetime"),
    Column("First response", lambda i: i.first_responded_at, "datetime"),
    Column("Resolved", lambda i: i.resolved_at, "datetime"),
    Column("Closed", lambda i: i.closed_at, "datetime"),
    Column("SLA due", lambda i: i.sla_due_at, "datetime"),
    Column("Reopened", lambda i: i.reopen_count, "int", width=10),
]
