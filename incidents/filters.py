import django_filters
from django.contrib.auth import get_user_model

from incidents.models import Incident
from incidents.states import Status
from servicedesk.models import Service, Team


class IncidentFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Status.choices)
    priority = django_filters.MultipleChoiceFilter(choices=[(i, f"P{i}") for i in range(1, 6)])
    assignment_group = django_filters.ModelChoiceFilter(queryset=Team.objects.all())
    assignee = django_filters.ModelChoiceFilter(
        field_name="assignee", to_field_name="username", queryset=get_user_model().objects.all()
    )
    requester = django_filters.ModelChoiceFilter(
        field_name="requester", to_field_name="username", queryset=get_user_model().objects.all()
    )
    service = django_filters.ModelChoiceFilter(queryset=Service.objects.all())
    major = django_filters.BooleanFilter()

    class Meta:
        model = Incident
        fields = ["status", "priority", "assignment_group", "assignee", "requester", "service", "major"]
