import django_filters
from django.contrib.auth import get_user_model

from incidents.models import Incident
from incidents.search import search_filter
from incidents.states import Status
from servicedesk.models import Service, Team
from servicedesk.roles import is_staff_role


class IncidentFilter(django_filters.FilterSet):
    # distinct=False: these filter the incident's own columns (no join can duplicate a row), and a DISTINCT
    # would make PostgreSQL sort the whole filtered set before paginating.
    status = django_filters.MultipleChoiceFilter(choices=Status.choices, distinct=False)
    priority = django_filters.MultipleChoiceFilter(choices=[(i, f"P{i}") for i in range(1, 6)], distinct=False)
    assignment_group = django_filters.ModelChoiceFilter(queryset=Team.objects.all())
    assignee = django_filters.ModelChoiceFilter(
        field_name="assignee", to_field_name="username", queryset=get_user_model().objects.all()
    )
    unassigned = django_filters.BooleanFilter(field_name="assignee", lookup_expr="isnull")
    requester = django_filters.ModelChoiceFilter(
        field_name="requester", to_field_name="username", queryset=get_user_model().objects.all()
    )
    service = django_filters.ModelChoiceFilter(queryset=Service.objects.all())
    major = django_filters.BooleanFilter()
    parent = django_filters.CharFilter(field_name="parent__number")
    q = django_filters.CharFilter(method="filter_q", label="Full-text search or a number")

    class Meta:
        model = Incident
        fields = ["status", "priority", "assignment_group", "assignee", "requester", "service", "major"]

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        user = getattr(request, "user", None)
        if user is None or not is_staff_role(user):
            # For agents an unknown username is a 400 naming the field. A requester must not learn which
            # usernames exist: their people filters only narrow their own incidents (the queryset), so
            # another person's name answers exactly like a name nobody has: no rows.
            for name in ("requester", "assignee"):
                self.filters[name] = django_filters.CharFilter(field_name=f"{name}__username")

    def filter_q(self, queryset, name, value):
        user = getattr(self.request, "user", None)
        return search_filter(queryset, value, include_internal=bool(user and is_staff_role(user)))
