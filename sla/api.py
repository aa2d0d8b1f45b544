"""Read-only API of the SLA configuration, for agents: policies with their targets and escalation steps,
calendars with their working intervals and holidays; and the compliance report, for managers and admins.
Each costs a constant number of queries."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings

from servicedesk.api.pagination import PagePagination
from servicedesk.api.permissions import IsStaffRole
from servicedesk.replica import replica_view
from sla.models import BusinessCalendar, EscalationStep, Holiday, SlaPolicy, SlaTarget, WorkingInterval
from sla.reports import (
    GROUP_BY,
    KINDS,
    ReportParamsError,
    breached_clocks,
    breached_rows,
    report_params,
    reports_allowed,
    sla_report,
)
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


# --- the compliance report ----------------------------------------------------------------------------------


class CanSeeSlaReports(BasePermission):
    message = "SLA reports are for managers and admins."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and reports_allowed(request.user))


class CsvRenderer(BaseRenderer):
    """Lets `?format=csv` through content negotiation; the view answers it with a streamed CSV file."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):  # pragma: no cover - never reached
        raise NotImplementedError("the report streams its CSV itself")


_KIND_NAMES = [kind.value for kind in KINDS]


class SlaReportFiguresSerializer(serializers.Serializer):
    """One clock kind's figures (schema of the report; the view writes the report as it is)."""

    stopped = serializers.IntegerField(help_text="Clocks stopped in the period: met + breached.")
    met = serializers.IntegerField()
    breached = serializers.IntegerField()
    compliance = serializers.FloatField(allow_null=True, help_text="Per cent met of stopped (null: none).")
    mean_seconds = serializers.FloatField(allow_null=True, help_text="Mean business seconds the clocks ran.")
    p90_seconds = serializers.FloatField(allow_null=True, help_text="90th percentile (continuous).")
    open_breached = serializers.IntegerField(help_text="Clocks still open that had breached by the end.")


class SlaReportKindsSerializer(serializers.Serializer):
    first_response = SlaReportFiguresSerializer(required=False, help_text="Unless kind=resolution.")
    resolution = SlaReportFiguresSerializer(required=False, help_text="Unless kind=first_response.")


class SlaReportGroupSerializer(SlaReportKindsSerializer):
    key = serializers.CharField(allow_null=True, help_text="Team id, priority or policy name.")
    label = serializers.CharField()


class SlaReportBreachedSerializer(serializers.Serializer):
    ticket_type = serializers.CharField()
    ticket_id = serializers.IntegerField()
    number = serializers.CharField()
    title = serializers.CharField()
    url = serializers.CharField(help_text="The ticket's page in the agent workspace.")
    kind = serializers.ChoiceField(choices=_KIND_NAMES)
    state = serializers.CharField()
    priority = serializers.IntegerField()
    team = serializers.CharField()
    policy = serializers.CharField()
    due_at = serializers.DateTimeField(allow_null=True)
    breached_at = serializers.DateTimeField()
    stopped_at = serializers.DateTimeField(allow_null=True)


class SlaReportBreachedPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SlaReportBreachedSerializer(many=True)


_REPORT = inline_serializer("SlaReport", {  # "from" cannot be a class attribute
    "from": serializers.DateField(), "to": serializers.DateField(),
    "group_by": serializers.ChoiceField(choices=list(GROUP_BY)),
    "kinds": serializers.ListField(child=serializers.CharField()),
    "ticket_types": serializers.ListField(child=serializers.CharField()),
    "time_zone": serializers.CharField(help_text="The days of the period are days in this time zone."),
    "groups": SlaReportGroupSerializer(many=True),
    "totals": SlaReportKindsSerializer(),
    "breached": SlaReportBreachedPageSerializer(),
})


class _OneReportSchema(AutoSchema):
    """The report is one object, though routed as a list."""

    def _is_list_view(self, serializer=None) -> bool:
        return False


class SlaReportViewSet(viewsets.ViewSet):
    """SLA compliance for managers and admins (agents and requesters get 403): clocks that stopped in the
    period, grouped by team (at the stop), priority or policy, with the breached tickets, a page at a time."""

    permission_classes = [CanSeeSlaReports]
    schema = _OneReportSchema()
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CsvRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, required=True, description="First day (YYYY-MM-DD)."),
            OpenApiParameter("to", OpenApiTypes.DATE, required=True,
                             description="Last day, included; at most 366 days after from."),
            OpenApiParameter("group_by", str, required=True, enum=list(GROUP_BY)),
            OpenApiParameter("kind", str, enum=_KIND_NAMES, description="One clock kind (default: both)."),
            OpenApiParameter("ticket_type", str, description="One ticket type (default: every one)."),
            OpenApiParameter("page", int, description="Page of the breached tickets."),
            OpenApiParameter("page_size", int, description="Breached tickets per page (at most 200)."),
            OpenApiParameter("format", str, enum=["json", "csv"],
                             description="csv: the groups and every breached clock as a CSV file."),
        ],
        responses={(200, "application/json"): _REPORT, (200, "text/csv"): OpenApiTypes.STR},
    )
    @replica_view
    def list(self, request):
        try:
            params = report_params(request.query_params)
        except ReportParamsError as error:
            raise ValidationError({name: [message] for name, message in error.errors.items()}) from None
        report = sla_report(params)
        if request.accepted_renderer.format == "csv":
            from sla.views import csv_response

            return csv_response(report)
        paginator = PagePagination()
        page = paginator.paginate_queryset(breached_clocks(params), request, view=self)
        body = report.as_dict()
        body["breached"] = {"count": paginator.page.paginator.count, "next": paginator.get_next_link(),
                            "previous": paginator.get_previous_link(),
                            "results": [row.as_dict() for row in breached_rows(page)]}
        return Response(body)

    def finalize_response(self, request, response, *args, **kwargs):
        # A refusal or a 400 asked for as CSV is still said in JSON.
        if isinstance(response, Response) and getattr(request, "accepted_renderer", None) is not None \
                and request.accepted_renderer.format == "csv":
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
