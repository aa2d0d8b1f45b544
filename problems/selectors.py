"""Reads of problems with permission in the query: agents (and managers, admins) only; requesters see none."""

from django.db.models import QuerySet

from problems.models import Problem
from servicedesk.roles import is_staff_role


def problems_for(user) -> QuerySet[Problem]:
    if user is None or not user.is_authenticated or not is_staff_role(user):
        return Problem.objects.none()
    return Problem.objects.select_related("assignment_group", "assignee", "category", "requester", "updated_by")
