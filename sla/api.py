"""Read-only API of the SLA configuration, for agents: policies with their targets and escalation steps,
calendars with their working intervals and holidays. Each list costs a constant number of queries."""

from rest_framework import serializers, viewsets

from servicedesk.api.permissions import IsStaffRole
from sla.models import BusinessCalendar, EscalationStep, Holiday, SlaPolicy, SlaTarget, WorkingInterval
from sla.selectors import calendars_for_api, policies_for_api


class RefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class TargetSerializer(serializers.ModelSerializer):
    class Meta:
        model = SlaTarget
        fields = ["priority", "first_response_minutes", "resolution_minutes"]


class EscalationStepSerializer(serializers.ModelSerializer):
    team = RefSerializer(allow_null=True)
    webhook = RefSerializer(allow_null=True)

    class Meta:
        model = EscalationStep
        fields = ["when", "action", "team", "webhook"]


class PolicySerializer(serializers.ModelSerializer):
    service = RefSerializer(allow_null=True, help_text="Empty: any service.")
    organisation = RefSerializer(allow_null=True, help_text="Empty: any organisation.")
    calendar = RefSerializer()
    pause_statuses = serializers.ListField(
        child=serializers.CharField(),
        help_text='Statuses in which the clocks stop: "status" or "status:hold_reason".')
    targets = TargetSerializer(many=True)
    escalation_steps = EscalationStepSerializer(many=True)

    class Meta:
        model = SlaPolicy
        fields = ["id", "name", "order", "active", "ticket_type", "priority", "service", "organisation", "calendar",
                  "warning_percent", "pause_statuses", "targets", "escalation_steps"]


class IntervalSerializer(serializers.ModelSerializer):
    overnight = serializers.SerializerMethodField()

    def get_overnight(self, interval) -> bool:
        return interval.end <= interval.start

    class Meta:
        model = WorkingInterval
        fields = ["weekday", "start", "end", "overnight"]


class HolidaySerializer(serializers.ModelSerializer):
    class Meta:
        model = Holiday
        fields = ["date", "name"]


class CalendarSerializer(serializers.ModelSerializer):
    intervals = IntervalSerializer(many=True)
    holidays = HolidaySerializer(many=True)

    class Meta:
        model = BusinessCalendar
        fields = ["id", "name", "timezone", "is_24x7", "intervals", "holidays"]


class PolicyViewSet(viewsets.ReadOnlyModelViewSet):
    """SLA policies in the order they are tried (the first matching one applies), with their targets per
    priority in business minutes and their escalation steps. Agents only (requesters get 403)."""

    serializer_class = PolicySerializer
    permission_classes = [IsStaffRole]
    filterset_fields = ["ticket_type", "active", "calendar"]
    ordering_fields = ["order", "name"]

    def get_queryset(self):
        return policies_for_api()


class CalendarViewSet(viewsets.ReadOnlyModelViewSet):
    """Business calendars: time zone, weekly working intervals (weekday 0 = Monday; an end at or before the
    start is an overnight shift) and holidays. Agents only (requesters get 403)."""

    serializer_class = CalendarSerializer
    permission_classes = [IsStaffRole]
    filterset_fields = ["name", "is_24x7"]
    ordering_fields = ["name"]

    def get_queryset(self):
        return calendars_for_api()
