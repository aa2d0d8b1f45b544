"""The catalog API (the items a person may order, with their order forms; read-only) and the service requests
API (order an item, list and read requests, cancel, fulfil, close)."""

import hmac
import json
import time

import django_filters
from django.http import Http404, QueryDict
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from requests_app import services
from requests_app.approvals import approval_decide
from requests_app.filters import RequestFilter
from requests_app.forms_engine import AnswersInvalid
from requests_app.models import Approval, CatalogCategory, CatalogField, CatalogItem, ServiceRequest
from requests_app.selectors import approvals_for, catalog_items_for_api, requests_for
from servicedesk.api.fields import IdOrNameField, UserRefField
from servicedesk.api.pagination import KeysetPagination
from servicedesk.api.ratings import RatingActionMixin
from servicedesk.api.serializers import CommentCreateSerializer, TimelineEntrySerializer
from servicedesk.api.watchers import WatchersActionMixin
from servicedesk.errors import InvalidInput, NotVisible
from servicedesk.idempotency import IdempotentCreateMixin
from servicedesk.models import Team
from servicedesk.notifications import webhook_signature
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


class RequestAssignSerializer(RequestVersionSerializer):
    assignment_group = IdOrNameField(queryset=Team.objects.all(), required=False,
                                     help_text="A team's id or name: hand the request to it.")
    assignee = UserRefField(required=False, allow_null=True,
                            help_text="An agent of the request's team (after any team change), by username; "
                                      "null: nobody.")

    def validate(self, attrs):
        if "assignment_group" not in attrs and "assignee" not in attrs:
            raise ValidationError({"assignee": ["Give an assignee and/or an assignment_group."]})
        return attrs


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
class ServiceRequestViewSet(IdempotentCreateMixin, _SubmitMixin, RatingActionMixin, WatchersActionMixin,
                            mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Service requests: orders of catalog items. Requesters see only their own (another's number answers 404);
    agents see all. Filters: status (repeatable), assignment_group (id or name), assignee and requester
    (usernames), unassigned, item (id)."""

    serializer_class = ServiceRequestSerializer
    lookup_field = "number"
    filterset_class = RequestFilter
    # Requests grow without bound: keyset pages (newest first, or ?ordering=updated_at / -updated_at, each
    # served by an index with id as the tiebreak), no count of every match.
    pagination_class = KeysetPagination
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

    @extend_schema(request=RequestVersionSerializer, responses={200: ServiceRequestSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, number=None):
        """Agents: send a failed request back into fulfilment; an automated item's handler runs again."""
        return self._action(request, RequestVersionSerializer, services.request_retry)

    @extend_schema(request=RequestAssignSerializer, responses={200: ServiceRequestSerializer})
    @action(detail=True, methods=["post"])
    def assign(self, request, number=None):
        """Agents: give the request to an agent of its team (`assignee`), hand it to another team
        (`assignment_group`; its assignee is cleared unless one is given), or both."""
        _agents_only(request)
        service_request = self.get_object()
        data = RequestAssignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        common = {"request_id": service_request.id, "actor": request.user, "version": values.get("version")}
        team = values.get("assignment_group")
        if "assignee" in values:
            done = services.request_assignee_set(**common, assignee=values["assignee"], assignment_group=team)
        elif team is not None and team.id != service_request.assignment_group_id:
            done = services.request_assign(**common, assignment_group=team)
        else:  # already that team's: nothing to change (a retried call), but a stale version still answers 409
            done = services.request_assignee_set(**common, assignee=service_request.assignee)
        return self._respond(done)


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


# --- the outside tool's callback --------------------------------------------------------------------

CALLBACK_MAX_SKEW_SECONDS = 300


class FulfilmentCallbackSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["done", "failed"])
    message = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000,
                                    help_text="Shown to the requester when done; the error for the team when failed.")
    reference = serializers.CharField(required=False, allow_blank=True, default="", max_length=200,
                                      help_text="The tool's own reference for the job.")


class FulfilmentCallbackView(APIView):
    """The outside tool (software_install) reports the job done or failed. No login: the signed token in the
    URL names the run, and the body must carry X-Servicedesk-Timestamp and X-Servicedesk-Signature
    (sha256=HMAC-SHA256 of "<timestamp>.<raw body>" with the item's shared secret), the same scheme as our
    webhooks. One time only: a replay answers 409."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(request=FulfilmentCallbackSerializer,
                   responses={200: ServiceRequestSerializer, 403: OpenApiResponse(description="Bad signature"),
                              409: OpenApiResponse(description="Already called back, or no longer awaited")},
                   summary="Callback of an outside fulfilment tool (signed)")
    def post(self, request, token: str):
        from requests_app.fulfilment import callback_token_read, fulfilment_callback
        from requests_app.handlers import software_secret
        from requests_app.models import FulfilmentRun

        raw = request.body
        data = callback_token_read(token)
        run = FulfilmentRun.objects.select_related("request__item").filter(id=data["run"]).first()
        if run is None:
            raise NotVisible("no such callback")
        secret = software_secret(run.request.item.handler_settings or {})
        timestamp = request.headers.get("X-Servicedesk-Timestamp", "")
        signature = request.headers.get("X-Servicedesk-Signature", "")
        if not secret or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > CALLBACK_MAX_SKEW_SECONDS \
                or not hmac.compare_digest(webhook_signature(secret, timestamp, raw), signature):
            raise PermissionDenied("Bad or stale signature: sign \"<timestamp>.<body>\" with the shared secret.")
        try:
            payload = json.loads(raw or b"null")
        except ValueError as bad:
            raise ValidationError({"body": ["Not JSON."]}) from bad
        body = FulfilmentCallbackSerializer(data=payload if isinstance(payload, dict) else {})
        body.is_valid(raise_exception=True)
        done = fulfilment_callback(run_id=run.id, nonce=data.get("nonce", ""), **body.validated_data)
        return Response(ServiceRequestSerializer(done).data)


# --- approvals ------------------------------------------------------------------------------------


class ApprovalSerializer(serializers.ModelSerializer):
    request = serializers.CharField(source="request.number", read_only=True, help_text="The request's number.")
    item = serializers.SerializerMethodField(help_text='The ordered item, {"id", "name"}.')
    requester = UserRefField(source="request.requester", read_only=True)
    approver = UserRefField(read_only=True)
    decided_by = UserRefField(read_only=True, allow_null=True)
    answers = serializers.JSONField(source="request.answers", read_only=True,
                                    help_text="The request's answers, field name -> answer.")

    class Meta:
        model = Approval
        fields = ["id", "request", "item", "requester", "answers", "level", "mode", "via", "state", "approver",
                  "decided_by", "decided_at", "comment", "override", "created_at"]
        read_only_fields = fields

    def get_item(self, approval) -> dict:
        return {"id": approval.request.item_id, "name": approval.request.item.name}


class ApprovalDecisionSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000,
                                    help_text="Shown to the requester on the timeline; required to reject.")


class ApprovalFilter(django_filters.FilterSet):
    """`state` defaults to pending (what waits for a decision); `all` lists every state."""

    state = django_filters.ChoiceFilter(choices=[*Approval.State.choices, ("all", "All")], method="filter_state")

    class Meta:
        model = Approval
        fields = ["state", "level"]

    def __init__(self, data=None, *args, **kwargs):
        data = data.copy() if data is not None else QueryDict(mutable=True)
        if not data.get("state"):
            data["state"] = Approval.State.PENDING
        super().__init__(data, *args, **kwargs)

    def filter_state(self, queryset, name, value):
        return queryset if value == "all" else queryset.filter(state=value)


@extend_schema_view(
    list=extend_schema(summary="Approvals for me to decide (admins: everyone's); state=pending unless given"),
    retrieve=extend_schema(summary="One approval (404 unless it is mine or I am an admin)"),
)
class ApprovalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Approvals of service requests. Approvers see and decide their own; admins every one (deciding another's
    is recorded as an override). Another's approval answers 404; an approval already decided 409."""

    serializer_class = ApprovalSerializer
    filterset_class = ApprovalFilter
    ordering_fields = ["created_at", "level"]
    ordering = ["created_at", "id"]

    def get_queryset(self):
        return approvals_for(self.request.user).order_by("created_at", "id")

    def get_object(self):
        # Not through the list's filters: a decided approval is still found (409 on deciding, not 404).
        found = self.get_queryset().filter(id=self.kwargs["pk"]).first() if str(self.kwargs["pk"]).isdigit() else None
        if found is None:
            raise Http404("No such approval for you")
        return found

    def _decide(self, request, approve: bool):
        approval = self.get_object()
        data = ApprovalDecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval_decide(approval_id=approval.id, actor=request.user, approve=approve,
                        comment=data.validated_data["comment"])
        return Response(ApprovalSerializer(self.get_object(), context=self.get_serializer_context()).data)

    @extend_schema(request=ApprovalDecisionSerializer, responses={200: ApprovalSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve it (comment optional). The request moves on when its step is complete."""
        return self._decide(request, True)

    @extend_schema(request=ApprovalDecisionSerializer, responses={200: ApprovalSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject it, saying why (`comment` required): the request is rejected and never fulfilled."""
        return self._decide(request, False)
