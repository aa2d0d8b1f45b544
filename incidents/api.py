from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from incidents import services
from incidents.filters import IncidentFilter
from incidents.models import Category, Channel, Incident
from incidents.selectors import incidents_for_list, incidents_visible_to
from servicedesk.api.pagination import CreatedCursorPagination
from servicedesk.api.serializers import (
    AttachmentSerializer,
    AttachmentUploadSerializer,
    CommentCreateSerializer,
    IdOrNameField,
    TimelineEntrySerializer,
    UserRefField,
)
from servicedesk.models import ConfigurationItem, Service, Team
from servicedesk.roles import is_staff_role
from servicedesk.selectors import attachments_visible_to, timeline_visible_to
from servicedesk.services import attachment_add


class IncidentSerializer(serializers.ModelSerializer):
    requester = UserRefField(required=False)
    assignee = UserRefField(read_only=True)
    service = IdOrNameField(queryset=Service.objects.all(), required=False, allow_null=True)
    configuration_item = IdOrNameField(queryset=ConfigurationItem.objects.all(), required=False, allow_null=True)
    category = IdOrNameField(queryset=Category.objects.all(), required=False, allow_null=True)
    assignment_group = IdOrNameField(queryset=Team.objects.all(), required=False, allow_null=True)
    impact = serializers.IntegerField(min_value=1, max_value=3, default=3)
    urgency = serializers.IntegerField(min_value=1, max_value=3, default=3)

    class Meta:
        model = Incident
        fields = [
            "id", "number", "title", "description", "requester", "service", "configuration_item", "category",
            "channel", "impact", "urgency", "priority", "status", "hold_reason", "assignment_group", "assignee",
            "major", "parent", "resolution_code", "resolution_notes", "reopen_count", "first_responded_at",
            "resolved_at", "closed_at", "created_at", "updated_at", "version",
        ]
        read_only_fields = [
            "number", "priority", "status", "hold_reason", "assignee", "major", "parent", "resolution_code",
            "resolution_notes", "reopen_count", "first_responded_at", "resolved_at", "closed_at", "version",
        ]

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None and not is_staff_role(request.user):
            # A requester raises incidents for themselves and cannot route them.
            for name in ("requester", "assignment_group", "configuration_item", "channel"):
                fields[name].read_only = True
        return fields


class IncidentViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                      viewsets.GenericViewSet):
    """Incidents visible to the caller: agents see all, requesters only their own."""

    serializer_class = IncidentSerializer
    lookup_field = "number"
    filterset_class = IncidentFilter
    pagination_class = CreatedCursorPagination
    ordering_fields = None

    def get_queryset(self):
        if self.action == "list":
            return incidents_for_list(self.request.user)
        return incidents_visible_to(self.request.user).select_related(
            "requester", "assignee", "assignment_group", "service", "configuration_item", "category"
        )

    def perform_create(self, serializer):
        data = serializer.validated_data
        user = self.request.user
        staff = is_staff_role(user)
        serializer.instance = services.incident_create(
            title=data["title"],
            description=data.get("description", ""),
            requester=(data.get("requester") or user) if staff else user,
            created_by=user,
            impact=data["impact"],
            urgency=data["urgency"],
            channel=data.get("channel", Channel.API) if staff else Channel.API,
            service=data.get("service"),
            configuration_item=data.get("configuration_item"),
            category=data.get("category"),
            assignment_group=data.get("assignment_group"),
        )

    @extend_schema(request=CommentCreateSerializer, responses={200: TimelineEntrySerializer(many=True),
                                                               201: TimelineEntrySerializer})
    @action(detail=True, methods=["get", "post"])
    def comments(self, request, number=None):
        """GET: the timeline as the caller may see it. POST: a public reply or (agents) an internal note."""
        incident = self.get_object()
        if request.method == "GET":
            entries = timeline_visible_to(incident, request.user)
            page = self.paginate_queryset_plain(entries)
            return Response(TimelineEntrySerializer(page, many=True).data)
        data = CommentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        entry = services.incident_comment_add(incident=incident, author=request.user, **data.validated_data)
        return Response(TimelineEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

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

    def paginate_queryset_plain(self, queryset, limit: int = 500):
        # Timelines are short; the cap keeps a pathological ticket from answering megabytes.
        return list(queryset[:limit])

    def get_object(self):
        return get_object_or_404(self.get_queryset(), number=self.kwargs["number"])
