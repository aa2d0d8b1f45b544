"""REST API of the service insights: GET /api/v1/insights/measures/?from=&to=&team=&service= answers every
measure (insights.measures.MEASURES) over that scope and over the period of the same length before it, as the
dashboard's tiles show them, for BI tools and scripts. Agents, managers and admins only (requesters: 403); the
viewer's teams bound the figures exactly as on /agent/insights/ (another team: 400 naming `team`)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from insights.measures import MEASURES, format_value, measures_and_previous
from insights.rollup import rolled_at
from insights.scope import ScopeError, scope_for
from servicedesk.api.permissions import IsStaffRole
from servicedesk.replica import replica_view

MEASURE_FIELDS = {
    "key": serializers.CharField(), "label": serializers.CharField(),
    "unit": serializers.ChoiceField(["count", "percent", "hours", "score"]),
    "better": serializers.ChoiceField(["higher", "lower", ""], help_text="Which way is better; empty: a volume."),
    "value": serializers.FloatField(allow_null=True), "display": serializers.CharField(),
    "previous": serializers.FloatField(allow_null=True, help_text="Over the period of the same length before."),
    "help": serializers.CharField(),
}


class MeasuresView(APIView):
    permission_classes = [IsStaffRole]

    @extend_schema(
        summary="Every measure of the service insights over a period, team and service",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="First day (default: 29 days before `to`)."),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Last day, included (default: today)."),
            OpenApiParameter("team", OpenApiTypes.INT, description="One of your teams (default: all you see)."),
            OpenApiParameter("service", OpenApiTypes.INT, description="A service (default: all)."),
        ],
        responses=inline_serializer("InsightMeasures", {
            "from": serializers.DateField(), "to": serializers.DateField(),
            "team": serializers.CharField(), "service": serializers.CharField(),
            "counted_at": serializers.DateTimeField(allow_null=True,
                                                    help_text="When the daily rollup last ran."),
            "measures": inline_serializer("InsightMeasure", MEASURE_FIELDS, many=True),
        }),
        tags=["insights"],
    )
    @replica_view
    def get(self, request):
        try:
            scope = scope_for(request.user, request.query_params)
        except ScopeError as error:
            raise ValidationError({field: [message] for field, message in error.errors.items()}) from None
        now, before = measures_and_previous(scope)
        return Response({
            "from": scope.date_from, "to": scope.date_to, "team": scope.team_label, "service": scope.service_label,
            "counted_at": rolled_at(),
            "measures": [{"key": key, "label": m.label, "unit": m.unit, "better": m.better, "value": now[key],
                          "display": format_value(key, now[key]), "previous": before[key], "help": m.help}
                         for key, m in MEASURES.items()],
        })
