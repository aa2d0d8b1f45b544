"""REST API of problem management: /api/v1/problems/ (list, create, read, PATCH with `version`, lifecycle and
link actions) and /api/v1/known-errors/?q= (ranked search). Agents, managers and admins only: a requester gets
403 everywhere. Every write goes through problems.services."""

import django_filters
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from incidents.models import Category, Incident
from problems import services
from problems.models import Problem
from problems.search import known_errors_search, search_ranked
from problems.selectors import problems_for
from problems.states import Status
from servicedesk.api.fields import IdOrNameField, UserRefField
from servicedesk.api.pagination import CreatedCursorPagination, PagePagination
from servicedesk.api.permissions import IsStaffRole
from servicedesk.idempotency import IdempotentCreateMixin
from servicedesk.models import ConfigurationItem, Service, Team


def problems_for_api(user):
    """The problems `user` may see with everything the representation reads, in a constant number of queries
    whatever the page size (one per many-to-many)."""
    return problems_for(user).select_related("knowledge_article", "created_by").prefetch_related(
        Prefetch("services", queryset=Service.objects.only("id", "name").order_by("name")),
        Prefetch("configuration_items", queryset=ConfigurationItem.objects.only("id", "name").order_by("name")),
        Prefetch("incidents", queryset=Incident.objects.only("id", "number").order_by("number")),
        Prefetch("related", queryset=Problem.objects.only("id", "number").order_by("number")),
    )


class ProblemSerializer(serializers.ModelSerializer):
    category = IdOrNameField(read_only=True)
    assignment_group = IdOrNameField(read_only=True)
    assignee = UserRefField(read_only=True)
    created_by = UserRefField(read_only=True)
    services = serializers.SerializerMethodField()
    configuration_items = serializers.SerializerMethodField()
    incidents = serializers.SerializerMethodField(help_text="Numbers of the linked incidents.")
    related = serializers.SerializerMethodField(help_text="Numbers of the related problems.")
    knowledge_article = serializers.SerializerMethodField(help_text="Number of the known error's article.")
    rank = serializers.SerializerMethodField(help_text="Relevance to `q` (higher is better); null without `q`.")

    class Meta:
        model = Problem
        fields = [
            "id", "number", "title", "description", "status", "impact", "urgency", "priority", "category",
            "services", "configuration_items", "assignment_group", "assignee", "root_cause", "analysis",
            "workaround", "permanent_fix", "change_reference", "resolution_code", "resolution_notes",
            "knowledge_article", "incidents", "related", "created_by", "created_at", "updated_at",
            "known_error_at", "resolved_at", "closed_at", "version", "rank",
        ]
        read_only_fields = fields

    def get_services(self, problem) -> list[str]:
        return [service.name for service in problem.services.all()]

    def get_configuration_items(self, problem) -> list[str]:
        return [item.name for item in problem.configuration_items.all()]

    def get_incidents(self, problem) -> list[str]:
        return [incident.number for incident in problem.incidents.all()]

    def get_related(self, problem) -> list[str]:
        return [other.number for other in problem.related.all()]

    def get_knowledge_article(self, problem) -> str | None:
        return problem.knowledge_article.number if problem.knowledge_article_id else None

    def get_rank(self, problem) -> float | None:
        rank = getattr(problem, "rank", None)
        return None if rank is None else round(float(rank), 6)


class IncidentNumbersField(serializers.ListField):
    """A list of incident numbers; answers the Incident objects. Unknown numbers are a 400 naming them."""

    child = serializers.CharField(max_length=16)

    def to_internal_value(self, data):
        numbers = [number.strip().upper() for number in super().to_internal_value(data)]
        found = {incident.number: incident for incident in Incident.objects.filter(number__in=numbers)}
        unknown = [number for number in numbers if number not in found]
        if unknown:
            raise serializers.ValidationError(f"unknown incident numbers: {', '.join(unknown)}")
        return list({number: found[number] for number in numbers}.values())


class ProblemWriteSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    impact = serializers.IntegerField(min_value=1, max_value=3, required=False)
    urgency = serializers.IntegerField(min_value=1, max_value=3, required=False)
    category = IdOrNameField(queryset=Category.objects.all(), required=False, allow_null=True)
    services = serializers.ListField(child=IdOrNameField(queryset=Service.objects.all()), required=False)
    configuration_items = serializers.ListField(child=IdOrNameField(queryset=ConfigurationItem.objects.all()),
                                                required=False)
    assignment_group = IdOrNameField(queryset=Team.objects.all(), required=False, allow_null=True)
    assignee = UserRefField(required=False, allow_null=True)


class ProblemCreateSerializer(ProblemWriteSerializer):
    incidents = IncidentNumbersField(required=False, help_text="Numbers of incidents this problem explains.")


class ProblemUpdateSerializer(ProblemWriteSerializer):
    """PATCH: send the `version` you read; a stale one gets 409 and nothing is overwritten."""

    version = serializers.IntegerField(min_value=1)
    title = serializers.CharField(max_length=200, required=False)
    root_cause = serializers.CharField(required=False, allow_blank=True)
    analysis = serializers.JSONField(required=False,
                                     help_text="{five_whys: [text], fishbone: {category: [text]}, "
                                               "timeline: [{at, what}]}")
    workaround = serializers.CharField(required=False, allow_blank=True)
    permanent_fix = serializers.CharField(required=False, allow_blank=True)
    change_reference = serializers.CharField(max_length=100, required=False, allow_blank=True)

    def validate(self, attrs):
        refused = sorted(set(self.initial_data) & {"status", "number", "priority", "resolution_code",
                                                   "resolution_notes", "incidents", "related"})
        if refused:
            raise serializers.ValidationError(
                {name: [f"{name} is not set by PATCH: use the actions (investigate, known-error, resolve, close, "
                        "reopen, link) or impact/urgency for priority"] for name in refused})
        return attrs


class ProblemVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, required=False,
                                       help_text="The version you read; 409 when someone changed it since.")


class ProblemReasonSerializer(ProblemVersionSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ProblemReopenSerializer(ProblemVersionSerializer):
    reason = serializers.CharField()


class ProblemResolveSerializer(ProblemVersionSerializer):
    resolution_notes = serializers.CharField()
    resolution_code = serializers.CharField(max_length=40, required=False, default="fixed")
    resolve_incidents = serializers.BooleanField(required=False, default=False,
                                                 help_text="Resolve the linked open incidents (asynchronously).")


class ProblemLinkSerializer(serializers.Serializer):
    incidents = IncidentNumbersField(allow_empty=False)


class ProblemUnlinkSerializer(serializers.Serializer):
    incident = serializers.SlugRelatedField(slug_field="number", queryset=Incident.objects.all())


class ProblemFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Status.choices, distinct=False)
    priority = django_filters.MultipleChoiceFilter(choices=[(i, f"P{i}") for i in range(1, 6)], distinct=False)
    assignment_group = django_filters.ModelChoiceFilter(queryset=Team.objects.all())
    assignee = django_filters.ModelChoiceFilter(field_name="assignee", to_field_name="username",
                                                queryset=get_user_model().objects.all())
    service = django_filters.ModelChoiceFilter(field_name="services", queryset=Service.objects.all(),
                                               distinct=True)
    q = django_filters.CharFilter(method="filter_q", label="Full-text search or a PRB number")

    class Meta:
        model = Problem
        fields = ["status", "priority", "assignment_group", "assignee", "service"]

    def filter_q(self, queryset, name, value):
        text = (value or "").strip()
        if text.upper().startswith("PRB") and text[3:].isdigit():
            return queryset.filter(number=text.upper())
        if not text:
            return queryset
        return queryset.filter(id__in=search_ranked(Problem.objects.all(), text).values("id"))


class ProblemCreateMixin:
    """POST: create through problems.services, answer the full representation (201)."""

    @extend_schema(request=ProblemCreateSerializer, responses={201: ProblemSerializer})
    def create(self, request, *args, **kwargs):
        data = ProblemCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        problem = services.problem_create(created_by=request.user, **data.validated_data)
        return self._respond(problem, status.HTTP_201_CREATED)


class ProblemViewSet(IdempotentCreateMixin, ProblemCreateMixin, mixins.ListModelMixin,
                     mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Problems, for agents only (requesters get 403).

    Filters: status, priority, assignment_group, assignee (username), service, q (full text over title, root
    cause, workaround and description; a PRB number finds that problem).
    """

    serializer_class = ProblemSerializer
    permission_classes = [IsStaffRole]
    lookup_field = "number"
    filterset_class = ProblemFilter
    pagination_class = CreatedCursorPagination
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return problems_for_api(self.request.user)

    def get_object(self):
        return get_object_or_404(self.get_queryset(), number=self.kwargs["number"].upper())

    def _respond(self, problem, code=status.HTTP_200_OK):
        problem = self.get_queryset().get(id=problem.id)
        return Response(ProblemSerializer(problem, context=self.get_serializer_context()).data, status=code)

    @extend_schema(request=ProblemUpdateSerializer, responses={200: ProblemSerializer})
    def partial_update(self, request, number=None):
        problem = self.get_object()
        data = ProblemUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        version = values.pop("version")
        problem = services.problem_update(problem_id=problem.id, actor=request.user, version=version, **values)
        return self._respond(problem)

    def _action(self, request, serializer_class, service):
        problem = self.get_object()
        data = serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        problem = service(problem_id=problem.id, actor=request.user, **data.validated_data)
        return self._respond(problem)

    @extend_schema(request=ProblemReasonSerializer, responses={200: ProblemSerializer})
    @action(detail=True, methods=["post"])
    def investigate(self, request, number=None):
        return self._action(request, ProblemReasonSerializer, services.problem_investigate)

    @extend_schema(request=ProblemReasonSerializer, responses={200: ProblemSerializer})
    @action(detail=True, methods=["post"], url_path="known-error")
    def known_error(self, request, number=None):
        """Refused (400 naming root_cause) until a root cause or a workaround is recorded."""
        return self._action(request, ProblemReasonSerializer, services.problem_known_error)

    @extend_schema(request=ProblemResolveSerializer, responses={200: ProblemSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request, number=None):
        """`resolution_notes` required, `resolution_code` default `fixed`; with `resolve_incidents` the linked
        open incidents are resolved by a worker after the commit."""
        return self._action(request, ProblemResolveSerializer, services.problem_resolve)

    @extend_schema(request=ProblemVersionSerializer, responses={200: ProblemSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request, number=None):
        return self._action(request, ProblemReasonSerializer, services.problem_close)

    @extend_schema(request=ProblemReopenSerializer, responses={200: ProblemSerializer})
    @action(detail=True, methods=["post"])
    def reopen(self, request, number=None):
        return self._action(request, ProblemReopenSerializer, services.problem_reopen)

    @extend_schema(request=ProblemLinkSerializer, responses={200: ProblemSerializer})
    @action(detail=True, methods=["post"])
    def link(self, request, number=None):
        """Link incidents by number; unknown numbers are a 400 naming them, and nothing is linked."""
        problem = self.get_object()
        data = ProblemLinkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            services.problem_link_incidents(problem_id=problem.id, actor=request.user,
                                            incidents=data.validated_data["incidents"])
        return self._respond(problem)


    @extend_schema(request=ProblemUnlinkSerializer, responses={200: ProblemSerializer})
    @action(detail=True, methods=["post"])
    def unlink(self, request, number=None):
        """Unlink one incident (`incident`: its number)."""
        problem = self.get_object()
        data = ProblemUnlinkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.problem_unlink_incident(problem_id=problem.id, actor=request.user,
                                         incident=data.validated_data["incident"])
        return self._respond(problem)


class KnownErrorSerializer(ProblemSerializer):
    class Meta(ProblemSerializer.Meta):
        fields = ["number", "title", "status", "priority", "root_cause", "workaround", "permanent_fix",
                  "known_error_at", "knowledge_article", "rank"]
        read_only_fields = fields


class KnownErrorListView(generics.ListAPIView):
    """Known errors (known error, resolved, closed) ranked by relevance to `q`; agents only."""

    serializer_class = KnownErrorSerializer
    permission_classes = [IsStaffRole]
    pagination_class = PagePagination
    filter_backends = []

    @extend_schema(parameters=[OpenApiParameter("q", str, description="Words to look for (web search syntax).")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return known_errors_search(self.request.user, self.request.query_params.get("q", "")).select_related(
            "knowledge_article")
