"""The catalog API (the items a person may order, with their order forms; read-only) and the service requests
API (order an item, list and read requests, cancel, fulfil, close)."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from requests_app import services
from requests_app.forms_engine import AnswersInvalid
from requests_app.models import CatalogCategory, CatalogField, CatalogItem, ServiceRequest
from requests_app.selectors import catalog_items_for_api, requests_for
from servicedesk.api.fields import UserRefField
from servicedesk.api.ratings import RatingActionMixin
from servicedesk.api.serializers import CommentCreateSerializer, TimelineEntrySerializer
from servicedesk.errors import InvalidInput
from servicedesk.idempotency import IdempotentCreateMixin
from servicedesk.models import Team
from servicedesk.roles import is_staff_role
from servicedesk.selectors import timeline_visible_to

TIMELINE_LIMIT = 500


class CategoryRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = CatalogCategory
        fields = ["id", "name"]


class FormFieldSerializer(serializers.ModelSerializer):
    choices = serializers.ListField(
        source="choice_list", child=serializers.CharField(),
        help_text="The allowed values of a choice or multi_choice field, in order; empty for other types.")

    class Meta:
        model = CatalogField
        fields = ["name", "label", "type", "required", "choices", "help_text"]
        extra_kwargs = {
            "name": {"help_text": "The key of this field's answer."},
            "required": {"help_text": "An answer must be given (for boolean fields: true or false)."},
        }


class CatalogItemSerializer(serializers.ModelSerializer):
    category = CategoryRefSerializer()
    fields = FormFieldSerializer(many=True, help_text="The order form, in order.")
    requires_approval = serializers.BooleanField(help_text="Someone must approve an order before it is fulfilled.")
    automated = serializers.BooleanField(help_text="Fulfilled by an automated handler, with no one in the loop.")
    expected_delivery = serializers.CharField(
        help_text='How soon it is usually delivered, as people read it ("3 business days"); empty when not said.')

    class Meta:
        model = CatalogItem
        fields = ["id", "name", "description", "category", "fields", "requires_approval", "automated",
                  "expected_delivery"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="Catalog items I may order"),
    retrieve=extend_schema(summary="One catalog item with its order form (404 if I may not order it)"),
)
class CatalogItemViewSet(viewsets.ReadOnlyModelViewSet):
    """Active catalog items the caller may order (for everyone, for the caller's organisation, or for one of
    the caller's groups), with their order forms. Anyone signed in; an item the caller may not order answers
    404 like a missing one."""

    serializer_class = CatalogItemSerializer
    filterset_fields = ["category"]
    ordering_fields = ["name", "id"]

    def get_queryset(self):
        return catalog_items_for_api(self.request.user)


# --- service requests -----------------------------------------------------------------------------


class ItemRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = CatalogItem
        fields = ["id", "name"]


class TeamRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name"]


class ServiceRequestSerializer(serializers.ModelSerializer):
    item = ItemRefSerializer(read_only=True)
    requester = UserRefField(read_only=True)
    assignee = UserRefField(read_only=True)
    assignment_group = TeamRefSerializer(read_only=True, allow_null=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)

    class Meta:
        model = ServiceRequest
        fields = ["number", "title", "item", "answers", "status", "status_label", "priority", "requester",
                  "assignment_group", "assignee", "created_at", "updated_at", "fulfilled_at", "closed_at",
                  "version"]
        read_only_fields = fields


class RequestSubmitSerializer(serializers.Serializer):
    item = serializers.IntegerField(help_text="The id of a catalog item the caller may order.")
    answers = serializers.JSONField(required=False, default=dict,
                                    help_text="Field name -> answer, checked against the item's form.")


class RequestVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, help_text="The version you read; a stale one answers 409.")


class RequestCancelSerializer(RequestVersionSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class RequestReopenSerializer(RequestVersionSerializer):
    reason = serializers.CharField(help_text="What is still missing or wrong; the team reads it.")


class RequestFulfilSerializer(RequestVersionSerializer):
    note = serializers.CharField(help_text="What was delivered; the requester reads it.")


class _SubmitMixin:
    """POST: order an item through requests_app.services.request_submit (wrapped by IdempotentCreateMixin)."""

    def create(self, request, *args, **kwargs):
        data = RequestSubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = CatalogItem.objects.filter(id=data.validated_data["item"]).first()
        if item is None:
            raise InvalidInput(f"item: no catalog item {data.validated_data['item']} that you may order",
                               field="item")
        try:
            made = services.request_submit(item=item, answers=data.validated_data["answers"],
                                           requester=request.user, created_by=request.user)
        except AnswersInvalid as bad:
            if set(bad.errors) == {"answers"}:  # not an object at all
                raise ValidationError({"answers": [bad.errors["answers"]]}) from bad
            raise ValidationError({"answers": {name: [message] for name, message in bad.errors.items()}}) from bad
        return self._respond(made, status.HTTP_201_CREATED)


def _agents_only(request) -> None:
    if not is_staff_role(request.user):
        raise PermissionDenied("Only agents can do this.")


@extend_schema_view(
    list=extend_schema(summary="Service requests I may see (agents: all; others: their own)"),
    retrieve=extend_schema(summary="One service request (404 if it is not mine to see)"),
    create=extend_schema(summary="Order a catalog item", request=RequestSubmitSerializer,
                         responses={201: ServiceRequestSerializer}),
)
class ServiceRequestViewSet(IdempotentCreateMixin, _SubmitMixin, RatingActionMixin, mixins.ListModelMixin,
                            mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Service requests: orders of catalog items. Requesters see only their own (another's number answers 404);
    agents see all. Filters: status, item."""

    serializer_class = ServiceRequestSerializer
    lookup_field = "number"
    filterset_fields = ["status", "item"]
    ordering_fields = ["created_at", "updated_at"]

    def get_queryset(self):
        return requests_for(self.request.user)

    def _respond(self, service_request, code=status.HTTP_200_OK):
        service_request = self.get_queryset().get(id=service_request.id)
        return Response(ServiceRequestSerializer(service_request, context=self.get_serializer_context()).data,
                        status=code)

    def _action(self, request, serializer_class, service, *, agents_only=True):
        if agents_only:
            _agents_only(request)
        service_request = self.get_object()
        data = serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        done = service(request_id=service_request.id, actor=request.user, **data.validated_data)
        return self._respond(done)

    @extend_schema(request=RequestCancelSerializer, responses={200: ServiceRequestSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, number=None):
        """The requester or an agent withdraws a request not yet fulfilled."""
        return self._action(request, RequestCancelSerializer, services.request_cancel, agents_only=False)

    @extend_schema(request=RequestFulfilSerializer, responses={200: ServiceRequestSerializer})
    @action(detail=True, methods=["post"])
    def fulfil(self, request, number=None):
        """Agents: in fulfilment -> fulfilled, with a note for the requester."""
        return self._action(request, RequestFulfilSerializer, services.request_fulfil)

    @extend_schema(request=RequestVersionSerializer, responses={200: ServiceRequestSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request, number=None):
        """Agents: close a fulfilled or rejected request."""
        return self._action(request, RequestVersionSerializer, services.request_close)

    @extend_schema(request=RequestReopenSerializer, responses={200: ServiceRequestSerializer})
    @action(detail=True, methods=["post"])
    def reopen(self, request, number=None):
        """The requester or an agent: fulfilled -> in fulfilment with the item's team, within the reopen window
        (REQUEST_REOPEN_DAYS after fulfilment), saying why."""
        return self._action(request, RequestReopenSerializer, services.request_reopen, agents_only=False)

    @extend_schema(request=CommentCreateSerializer, responses={200: TimelineEntrySerializer(many=True),
                                                               201: TimelineEntrySerializer})
    @action(detail=True, methods=["get", "post"])
    def comments(self, request, number=None):
        """GET: the timeline as the caller may see it (requesters never get internal entries).
        POST: a public reply or (agents) an internal note (`internal`: true; 400 naming it for others)."""
        service_request = self.get_object()
        if request.method == "GET":
            entries = timeline_visible_to(service_request, request.user)[:TIMELINE_LIMIT]
            return Response(TimelineEntrySerializer(entries, many=True, context={"request": request}).data)
        data = CommentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        entry = services.request_comment_add(request=service_request, author=request.user, **data.validated_data)
        return Response(TimelineEntrySerializer(entry, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)
