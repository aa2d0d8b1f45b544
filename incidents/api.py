from django.db import transaction
from django.db.models import Manager
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from incidents import services
from incidents.filters import IncidentFilter
from incidents.models import Category, Channel, Incident, ResolutionCode
from incidents.selectors import incidents_for_detail, incidents_for_list
from incidents.sla import TICKET_TYPE
from incidents.states import HoldReason
from servicedesk.api.pagination import CreatedCursorPagination
from servicedesk.api.ratings import RatingActionMixin
from servicedesk.api.serializers import (
    AttachmentSerializer,
    AttachmentUploadSerializer,
    CommentCreateSerializer,
    IdOrNameField,
    TimelineEntrySerializer,
    UserRefField,
)
from servicedesk.api.watchers import WatchersActionMixin
from servicedesk.idempotency import IdempotentCreateMixin
from servicedesk.models import ConfigurationItem, Service, Team
from servicedesk.roles import is_staff_role
from servicedesk.selectors import attachments_visible_to, timeline_visible_to
from servicedesk.services import attachment_add
from sla.clocks import clocks_of
from sla.display import clock_views
from sla.models import ClockKind, ClockState


class SlaClockSerializer(serializers.Serializer):
    """One SLA clock of a ticket, as of the response. Requesters get no OLA clocks, and no policy or team."""

    kind = serializers.ChoiceField(choices=ClockKind.choices, read_only=True)
    state = serializers.ChoiceField(choices=ClockState.choices, read_only=True)
    due_at = serializers.DateTimeField(read_only=True, allow_null=True,
                                       help_text="When the target is reached; null unless the clock is running.")
    breached = serializers.BooleanField(read_only=True, help_text="The clock went past its target.")
    remaining_seconds = serializers.IntegerField(
        read_only=True, help_text="Business seconds left before the target, negative when late; for a paused clock "
                                  "what was left when it paused.")
    elapsed_seconds = serializers.IntegerField(read_only=True, help_text="Business seconds counted so far.")
    target_seconds = serializers.IntegerField(read_only=True, help_text="The target in business seconds.")
    policy = serializers.SerializerMethodField(help_text="Name of the SLA policy (null for requesters and OLAs).")
    team = serializers.SerializerMethodField(help_text="OLA clocks: the team held to the target.")

    def get_policy(self, view) -> str | None:
        return (view.policy_name or None) if self.context.get("agent") else None

    def get_team(self, view) -> str | None:
        team = view.clock.team if view.clock.team_id else None
        return team.name if team is not None and self.context.get("agent") else None


class IncidentListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        # The clocks of every incident of the page in one query, read by each row's `sla` field.
        incidents = list(data.all() if isinstance(data, Manager) else data)
        self.context["sla_clocks"] = clocks_of(TICKET_TYPE, [i.id for i in incidents])
        return super().to_representation(incidents)


class IncidentSerializer(serializers.ModelSerializer):
    requester = UserRefField(required=False)
    assignee = UserRefField(required=False, allow_null=True)
    service = IdOrNameField(queryset=Service.objects.all(), required=False, allow_null=True)
    configuration_item = IdOrNameField(queryset=ConfigurationItem.objects.all(), required=False, allow_null=True)
    category = IdOrNameField(queryset=Category.objects.all(), required=False, allow_null=True)
    assignment_group = IdOrNameField(queryset=Team.objects.all(), required=False, allow_null=True)
    impact = serializers.IntegerField(
        min_value=1, max_value=3, required=False,
        help_text="Agents only (a requester who sends it gets 400). Default: the service's default impact, else 3.")
    urgency = serializers.IntegerField(min_value=1, max_value=3, default=3,
                                       help_text="How badly it stops the requester: 1 high to 3 low.")
    parent = serializers.SlugRelatedField(slug_field="number", read_only=True)
    children = serializers.SerializerMethodField()

    sla = serializers.SerializerMethodField(
        help_text="The incident's SLA clocks (first response, resolution; agents also see OLA clocks).")

    def get_children(self, incident) -> list[str]:
        # Filled by the detail view (one query); the list leaves it out rather than query per row.
        return getattr(incident, "child_numbers", [])

    @extend_schema_field(SlaClockSerializer(many=True))
    def get_sla(self, incident):
        found = self.context.get("sla_clocks")
        clocks = found.get(incident.id, []) if found is not None else \
            clocks_of(TICKET_TYPE, [incident.id]).get(incident.id, [])
        if "sla_now" not in self.context:  # once per response: every row is read at the same instant
            request = self.context.get("request")
            self.context["sla_now"] = timezone.now()
            self.context["sla_agent"] = request is not None and is_staff_role(request.user)
        now, agent = self.context["sla_now"], self.context["sla_agent"]
        views = clock_views(clocks, now, ola=agent)
        return SlaClockSerializer(views, many=True, context={"agent": agent}).data

    class Meta:
        model = Incident
        fields = [
            "id", "number", "title", "description", "requester", "service", "configuration_item", "category",
            "channel", "impact", "urgency", "priority", "status", "hold_reason", "assignment_group", "assignee",
            "major", "parent", "resolution_code", "resolution_notes", "reopen_count", "first_responded_at",
            "resolved_at", "closed_at", "created_at", "updated_at", "version", "children", "sla",
        ]
        list_serializer_class = IncidentListSerializer
        read_only_fields = [
            "number", "priority", "status", "hold_reason", "major", "resolution_code",
            "resolution_notes", "reopen_count", "first_responded_at", "resolved_at", "closed_at", "version",
        ]

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None and not is_staff_role(request.user):
            # A requester raises incidents for themselves and cannot route them.
            for name in ("requester", "assignment_group", "assignee", "configuration_item", "channel"):
                fields[name].read_only = True
        return fields


class IncidentUpdateSerializer(serializers.Serializer):
    """PATCH: send the `version` you read; a stale one gets 409 and nothing is overwritten."""

    version = serializers.IntegerField(min_value=1)
    title = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    impact = serializers.IntegerField(min_value=1, max_value=3, required=False)
    urgency = serializers.IntegerField(min_value=1, max_value=3, required=False)
    service = IdOrNameField(queryset=Service.objects.all(), required=False, allow_null=True)
    configuration_item = IdOrNameField(queryset=ConfigurationItem.objects.all(), required=False, allow_null=True)
    category = IdOrNameField(queryset=Category.objects.all(), required=False, allow_null=True)
    major = serializers.BooleanField(required=False)
    parent = serializers.SlugRelatedField(slug_field="number", queryset=Incident.objects.all(), required=False,
                                          allow_null=True)
    assignment_group = IdOrNameField(queryset=Team.objects.all(), required=False, allow_null=True)
    assignee = UserRefField(required=False, allow_null=True)

    def validate(self, attrs):
        refused = sorted(set(self.initial_data) & {"status", "hold_reason", "resolution_code", "number", "priority"})
        if refused:
            raise serializers.ValidationError(
                {name: [f"{name} is not set by PATCH: use the action endpoints (assign, hold, resume, resolve, "
                        "reopen, close, cancel) or impact/urgency for priority"] for name in refused}
            )
        return attrs


class VersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, required=False,
                                       help_text="The version you read; 409 when someone changed it since.")


class AssignSerializer(VersionSerializer):
    assignment_group = IdOrNameField(queryset=Team.objects.all(), required=False, allow_null=True)
    assignee = UserRefField(required=False, allow_null=True)

    def validate(self, attrs):
        if "assignment_group" not in attrs and "assignee" not in attrs:
            raise serializers.ValidationError({"assignee": ["Give an assignee and/or an assignment_group."]})
        return attrs


class HoldSerializer(VersionSerializer):
    hold_reason = serializers.ChoiceField(choices=HoldReason.choices)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ReasonSerializer(VersionSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ReopenSerializer(VersionSerializer):
    reason = serializers.CharField()


class ResolveSerializer(VersionSerializer):
    resolution_code = serializers.SlugRelatedField(slug_field="code",
                                                   queryset=ResolutionCode.objects.filter(active=True))
    resolution_notes = serializers.CharField()
    force = serializers.BooleanField(
        default=False, help_text="Resolve even though another part of the desk objects (e.g. the incident's "
                                 "monitoring alerts still fire: 409 naming `force` otherwise).")

    def validate_resolution_code(self, value) -> str:
        return value.code  # the service takes the code itself


def _agents_only(request):
    if not is_staff_role(request.user):
        from rest_framework.exceptions import PermissionDenied

        raise PermissionDenied("Only agents can do this.")


class IncidentViewSet(IdempotentCreateMixin, RatingActionMixin, WatchersActionMixin, mixins.CreateModelMixin, mixins.ListModelMixin,
                      mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Incidents visible to the caller: agents see all, requesters only their own (others answer 404).

    Filters: status, priority, assignment_group, assignee, requester, service, major, q (full text over title,
    description and comments for agents; title and description for requesters; a number finds that ticket).
    """

    serializer_class = IncidentSerializer
    lookup_field = "number"
    filterset_class = IncidentFilter
    pagination_class = CreatedCursorPagination
    ordering_fields = ["created_at", "updated_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]  # delete: watchers/{username}/ only

    def get_queryset(self):
        if self.action == "list":
            return incidents_for_list(self.request.user)
        return incidents_for_detail(self.request.user)

    def get_object(self):
        incident = get_object_or_404(self.get_queryset(), number=self.kwargs["number"])
        incident.child_numbers = list(incident.children.values_list("number", flat=True))
        return incident

    def _respond(self, incident, code=status.HTTP_200_OK):
        incident = self.get_queryset().get(id=incident.id)
        incident.child_numbers = list(incident.children.values_list("number", flat=True))
        return Response(IncidentSerializer(incident, context=self.get_serializer_context()).data, status=code)

    def perform_create(self, serializer):
        data = serializer.validated_data
        user = self.request.user
        staff = is_staff_role(user)
        serializer.instance = services.incident_create(
            title=data["title"],
            description=data.get("description", ""),
            requester=(data.get("requester") or user) if staff else user,
            created_by=user,
            impact=data.get("impact"),  # incidents.impact decides who may set it
            urgency=data["urgency"],
            channel=data.get("channel", Channel.API) if staff else Channel.API,
            service=data.get("service"),
            configuration_item=data.get("configuration_item"),
            category=data.get("category"),
            assignment_group=data.get("assignment_group"),
            assignee=data.get("assignee") if staff else None,
        )

    @extend_schema(request=IncidentUpdateSerializer, responses={200: IncidentSerializer})
    def partial_update(self, request, number=None):
        _agents_only(request)
        incident = self.get_object()
        data = IncidentUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        version = values.pop("version")
        assignment = {k: values.pop(k) for k in ("assignment_group", "assignee") if k in values}
        with transaction.atomic():
            incident = services.incident_update(incident_id=incident.id, actor=request.user, version=version,
                                                **values)
            if assignment:
                incident = services.incident_assign(incident_id=incident.id, actor=request.user,
                                                    version=incident.version, **assignment)
        return self._respond(incident)

    def _action(self, request, serializer_class, service):
        """Validate the body, then call the one service for this action."""
        _agents_only(request)
        incident = self.get_object()
        data = serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        incident = service(incident_id=incident.id, actor=request.user, **data.validated_data)
        return self._respond(incident)

    @extend_schema(request=AssignSerializer, responses={200: IncidentSerializer})
    @action(detail=True, methods=["post"])
    def assign(self, request, number=None):
        """Set assignee and/or group; assigning a person to a new incident starts it."""
        return self._action(request, AssignSerializer, services.incident_assign)

    @extend_schema(request=HoldSerializer, responses={200: IncidentSerializer})
    @action(detail=True, methods=["post"])
    def hold(self, request, number=None):
        return self._action(request, HoldSerializer, services.incident_hold)

    @extend_schema(request=ReasonSerializer, responses={200: IncidentSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, number=None):
        return self._action(request, ReasonSerializer, services.incident_resume)

    @extend_schema(request=ResolveSerializer, responses={200: IncidentSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request, number=None):
        """Resolve with a resolution code and notes; open child incidents are resolved with it."""
        return self._action(request, ResolveSerializer, services.incident_resolve)

    @extend_schema(request=ReopenSerializer, responses={200: IncidentSerializer})
    @action(detail=True, methods=["post"])
    def reopen(self, request, number=None):
        return self._action(request, ReopenSerializer, services.incident_reopen)

    @extend_schema(request=VersionSerializer, responses={200: IncidentSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request, number=None):
        return self._action(request, VersionSerializer, services.incident_close)

    @extend_schema(request=ReasonSerializer, responses={200: IncidentSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, number=None):
        return self._action(request, ReasonSerializer, services.incident_cancel)

    @extend_schema(request=CommentCreateSerializer, responses={200: TimelineEntrySerializer(many=True),
                                                               201: TimelineEntrySerializer})
    @action(detail=True, methods=["get", "post"])
    def comments(self, request, number=None):
        """GET: the timeline as the caller may see it (requesters never get internal entries).
        POST: a public reply or (agents) an internal note."""
        incident = self.get_object()
        if request.method == "GET":
            entries = timeline_visible_to(incident, request.user)[:TIMELINE_LIMIT]
            return Response(TimelineEntrySerializer(entries, many=True, context={"request": request}).data)
        data = CommentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        entry = services.incident_comment_add(incident=incident, author=request.user, **data.validated_data)
        return Response(TimelineEntrySerializer(entry, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request={"multipart/form-data": AttachmentUploadSerializer},
                   responses={200: AttachmentSerializer(many=True), 201: AttachmentSerializer})
    @action(detail=True, methods=["get", "post"], parser_classes=[MultiPartParser, FormParser, JSONParser])
    def attachments(self, request, number=None):
        incident = self.get_object()
        if request.method == "GET":
            items = attachments_visible_to(incident, request.user)
            return Response(AttachmentSerializer(items, many=True, context={"request": request}).data)
        data = AttachmentUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        internal = data.validated_data["internal"] and is_staff_role(request.user)
        with transaction.atomic():
            attachment = attachment_add(ticket=incident, upload=data.validated_data["file"], by=request.user,
                                        internal=internal)
        return Response(AttachmentSerializer(attachment, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


# Timelines are short; the cap keeps a pathological ticket from answering megabytes.
TIMELINE_LIMIT = 1000
