"""Internal notes on a problem's timeline (the workspace's note box). Problems have no requester to reply to,
so every entry is internal."""

from django.db import transaction

from problems.models import Problem
from servicedesk.services import audit_record, timeline_add


@transaction.atomic
def problem_note_add(*, problem_id: int, author, body: str):
    problem = Problem.objects.select_for_update().get(id=problem_id)
    entry = timeline_add(ticket=problem, kind="note", author=author, body=body)  # refuses an empty body
    audit_record(actor=author, action="problem.note", obj=problem, changes={"entry": entry.id})
    return entry
