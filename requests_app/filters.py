"""Query filters of the service requests API (/api/v1/requests/?status=...&assignment_group=...)."""

import django_filters
from django.contrib.auth import get_user_model

from requests_app.models import CatalogItem, ServiceRequest
from requests_app.states import Status
from servicedesk.roles import is_staff_role


class RequestFilter(django_filters.FilterSet):
    # distinct=False: these filter the request's own columns (no join can duplicate a row), and a DISTINCT
    # would make PostgreSQL sort the whole filtered set before paginating.
    status = django_filters.MultipleChoiceFilter(choices=Status.choices, distinct=False)
    assignment_group = django_filters.CharFilter(method="filter_team", label="Team id or name")
    assignee = django_filters.ModelChoiceFilter(
        field_name="assignee", to_field_name="username", queryset=get_user_model().objects.all())
    unassigned = django_filters.BooleanFilter(field_name="assignee", lookup_expr="isnull")
    requester = django_filters.ModelChoiceFilter(
        field_name="requester", to_field_name="username", queryset=get_user_model().objects.all())
    item = django_filters.ModelChoiceFilter(queryset=CatalogItem.objects.all())

    class Meta:
        model = ServiceRequest
        fields = ["status", "assignment_group", "assignee", "unassigned", "requester", "item"]

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        user = getattr(request, "user", None)
        if user is None or not is_staff_role(user):
            # For agents an unknown username is a 400 naming the field. A requester must not learn which
            # usernames exist: their people filters only narrow their own requests, so another person's name
            # answers exactly like a name nobody has: no rows.
            for name in ("requester", "assignee"):
                self.filters[name] = django_filters.CharFilter(field_name=f"{name}__username")

    def filter_team(self, queryset, name, value):
        value = value.strip()
        if value.isdigit():
            return queryset.filter(assignment_group_id=int(value))
        return queryset.filter(assignment_group__name=value)
