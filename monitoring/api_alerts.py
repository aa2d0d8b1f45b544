"""REST API of the event console: /api/v1/alerts/ (open alerts, filters state, severity, service, source, q),
/api/v1/alerts/{id}/ and /api/v1/alerts/{id}/acknowledge/. Agents, managers and admins only: a requester gets
403, as on problems. Reads come from monitoring.selectors (one query per page plus the count, whatever the page
size); the write goes through monitoring.services."""

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from monitoring import services
from monitoring.models import Alert
from monitoring.selectors import STATES, ConsoleParamsError, alerts_for, console_alerts, console_params
from servicedesk.api.fields import IdOrNameField, UserRefField
from servicedesk.api.pagination import KeysetPagination
from servicedesk.api.permissions import IsStaffRole


class AlertSerializer(serializers.ModelSerializer):
    source = IdOrNameField(read_only=True)
    service = IdOrNameField(read_only=True)
    configuration_item = IdOrNameField(read_only=True)
    incident = serializers.SerializerMethodField(help_text="Number of the incident the alert belongs to, if any.")
    acknowledged_by = UserRefField(read_only=True)

    class Meta:
        model = Alert
        fields = ["id", "source", "fingerprint", "external_id", "group_key", "status", "live", "severity",
                  "classification", "summary", "description", "labels", "service", "configuration_item",
                  "incident", "count", "first_seen", "last_seen", "starts_at", "cleared_at", "flapping",
                  "flapping_since", "acknowledged_at", "acknowledged_by"]
        read_only_fields = fields

    def get_incident(self, alert) -> str | None:
        return alert.incident.number if alert.incident_id else None


def _service_q(value: str) -> Q:
    """A service by id or by name (the API's convention for services)."""
    value = value.strip()
    return Q(service_id=int(value)) if value.isdigit() else Q(service__name__iexact=value)


@extend_schema_view(
    list=extend_schema(parameters=[
        OpenApiParameter("state", str, enum=list(STATES),
                         description="firing (default): what is wrong now; unacknowledged: firing and nobody on "
                                     "it; acknowledged; resolved: cleared within the reopen window; live: all."),
        OpenApiParameter("severity", str, many=True, explode=True,
                         description="critical, major, minor, warning, info (several: repeat or comma-separate)."),
        OpenApiParameter("service", str, description="A service's id or name."),
        OpenApiParameter("source", OpenApiTypes.INT, description="An event source's id."),
        OpenApiParameter("q", str, description="Words in the summary."),
    ]),
)
class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Alerts of the event console, for agents only (requesters get 403). The list holds open alerts (state
    firing by default), most severe first, then latest seen; each names the incident it belongs to."""

    serializer_class = AlertSerializer
    permission_classes = [IsStaffRole]
    # Cleared alerts pile up: keyset pages in the console's order (most severe, latest seen, id), no count.
    pagination_class = KeysetPagination
    filter_backends = []  # the filters are the console's (monitoring.selectors.console_params)

    def get_queryset(self):
        return alerts_for(self.request.user)

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        query = self.request.query_params.copy()
        service = query.pop("service", [""])[-1]
        try:
            params = console_params(query)
        except ConsoleParamsError as error:
            raise ValidationError(error.errors) from None
        alerts = console_alerts(self.request.user, params)
        return alerts.filter(_service_q(service)) if service.strip() else alerts

    @extend_schema(request=None, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Someone is on it: records who and when. Acknowledging again changes nothing (the first stays)."""
        alert = self.get_object()
        services.alert_acknowledge(alert_id=alert.id, actor=request.user)
        return Response(AlertSerializer(self.get_queryset().get(id=alert.id)).data)
