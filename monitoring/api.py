"""The ingestion endpoints (docs/monitoring.md, /api/v1/events/ and /api/v1/integrations/<tool>/).

A source authenticates with its token (`Authorization: Token <token>`, or `?token=` for tools that cannot set a
header). Wrong, missing or disabled: 401. Over the source's rate: 429 with Retry-After. Invalid: 400 (413 for
an oversize batch or body) naming each bad value, nothing stored. Valid: every event stored in one transaction,
202 with their ids; processing runs in the worker once the transaction commits (the outbox re-drives it when
the broker or the workers are down).
"""

import json
import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.parsers import BaseParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.ingest import MAX_BATCH, PayloadError, ingest
from monitoring.models import EventSource, Severity
from monitoring.sources import event_source_for_token


class EventSourceAuthentication(BaseAuthentication):
    """`Authorization: Token <event source token>` (or Bearer, as Alertmanager's `http_config.authorization`
    sends with its default type), or `?token=`. The request's `auth` is the EventSource; there is no user."""

    keywords = (b"token", b"bearer")

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        token = None
        if header and header[0].lower() in self.keywords:
            if len(header) != 2:
                raise exceptions.AuthenticationFailed("Authorization: give one token after the word Token.")
            token = header[1].decode(errors="replace")
        elif not header:
            token = request.query_params.get("token")
        if not token:
            return None
        source = event_source_for_token(token)
        if source is None:
            raise exceptions.AuthenticationFailed("Unknown or disabled event source token.")
        return (None, source)

    def authenticate_header(self, request):
        return 'Token realm="event sources"'


class EventSourceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "monitoring.api.EventSourceAuthentication"
    name = "eventSourceToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <event source token>` (admin: Event sources, or `manage.py "
                               "create_event_source`); `?token=` works too."}


class IsEventSource(BasePermission):
    def has_permission(self, request, view):
        if not isinstance(request.auth, EventSource):
            raise exceptions.NotAuthenticated("Send the event source's token: Authorization: Token <token>.")
        return True


class RawJSONParser(BaseParser):
    """JSON, parsed once with the standard library (no DRF JSON checks per value: the ingest module checks)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return json.loads(stream.read())
        except ValueError as exc:
            raise exceptions.ParseError(f"body: not valid JSON ({exc})") from exc


def _rate_check(source: EventSource, count: int) -> int | None:
    """Count `count` events against the source's per-minute budget (fixed one-minute windows in the shared
    cache); the seconds to wait when over it, else None."""
    limit = source.rate_limit_per_minute
    if not limit:
        return None
    window = int(time.time() // 60)
    key = f"monitoring:rate:{source.id}:{window}"
    cache.add(key, 0, timeout=120)
    try:
        used = cache.incr(key, count)
    except ValueError:  # expired between add and incr
        cache.set(key, count, timeout=120)
        used = count
    if used > limit:
        return 60 - int(time.time()) % 60 or 1
    return None


_event_fields = {
    "source_id": serializers.CharField(required=False, help_text="The sender's id of the alert: events with the "
                                                                  "same id are the same alert."),
    "status": serializers.ChoiceField(choices=["firing", "resolved"]),
    "severity": serializers.ChoiceField(choices=Severity.choices, required=False, help_text="Default: warning."),
    "summary": serializers.CharField(required=False, help_text="Required when firing without a source_id."),
    "description": serializers.CharField(required=False),
    "service": serializers.CharField(required=False, help_text="A service's name."),
    "configuration_item": serializers.CharField(required=False, help_text="A configuration item's name."),
    "labels": serializers.DictField(child=serializers.CharField(), required=False),
    "occurred_at": serializers.DateTimeField(required=False, help_text="ISO 8601 with a time zone; default: now."),
}
EventSchema = inline_serializer("MonitoringEvent", fields=_event_fields)
EventBatchSchema = inline_serializer("MonitoringEventBatch", fields={
    "events": serializers.ListField(child=inline_serializer("MonitoringBatchEvent", fields=_event_fields),
                                    max_length=MAX_BATCH),
})
AcceptedSchema = inline_serializer("EventsAccepted", fields={
    "accepted": serializers.IntegerField(), "ids": serializers.ListField(child=serializers.IntegerField()),
})
ERRORS = {
    400: OpenApiResponse(description="Invalid payload: each bad value named by its path, nothing stored."),
    401: OpenApiResponse(description="Missing, unknown or disabled source token."),
    413: OpenApiResponse(description=f"More than {MAX_BATCH} events in one request, or a body too large."),
    429: OpenApiResponse(description="Over the source's events per minute; Retry-After says when to retry."),
}
TOKEN_PARAMETER = OpenApiParameter("token", str, required=False,
                                   description="The source token, for tools that cannot send a header.")


class _IngestView(APIView):
    authentication_classes = [EventSourceAuthentication]
    permission_classes = [IsEventSource]
    parser_classes = [RawJSONParser]
    throttle_classes = []
    kind = "generic"

    def post(self, request):
        source: EventSource = request.auth
        try:
            body = request.data
        except RequestDataTooBig:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return Response({"detail": f"body: larger than {limit} bytes; send smaller batches"},
                            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        try:
            count = _count(body)
            wait = _rate_check(source, count)
            if wait is not None:
                return Response(
                    {"detail": f"{source.name} sends more than {source.rate_limit_per_minute} events per minute; "
                               f"retry in {wait} s"},
                    status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(wait)})
            ids = ingest(source, body, kind=self.kind)
        except PayloadError as exc:
            first = next(iter(exc.errors.values()))
            detail = f"{len(exc.errors)} problem(s), nothing stored. " + "; ".join(
                f"{path}: {text}" for path, text in list(exc.errors.items())[:20])
            return Response({"detail": detail if len(exc.errors) > 1 else f"{next(iter(exc.errors))}: {first}",
                             "errors": exc.errors}, status=exc.status)
        return Response({"accepted": len(ids), "ids": ids}, status=status.HTTP_202_ACCEPTED)


def _count(body) -> int:
    if isinstance(body, dict):
        for key in ("events", "alerts"):
            if isinstance(body.get(key), list):
                return max(1, len(body[key]))
    return 1


class EventsView(_IngestView):
    kind = "generic"

    @extend_schema(
        tags=["events"], operation_id="events_create", parameters=[TOKEN_PARAMETER],
        request=PolymorphicProxySerializer(component_name="MonitoringEventOrBatch",
                                           serializers=[EventSchema, EventBatchSchema],
                                           resource_type_field_name=None),
        responses={202: AcceptedSchema, **ERRORS},
        description=f"One event, or {{\"events\": [...]}} with up to {MAX_BATCH}. Unknown fields are refused. "
                    "A batch is stored whole or not at all.",
    )
    def post(self, request):
        return super().post(request)


class AlertmanagerView(_IngestView):
    kind = "alertmanager"

    @extend_schema(
        tags=["events"], operation_id="integrations_alertmanager", parameters=[TOKEN_PARAMETER],
        request=inline_serializer("AlertmanagerWebhook", fields={
            "version": serializers.CharField(), "status": serializers.CharField(),
            "receiver": serializers.CharField(), "groupKey": serializers.CharField(),
            "groupLabels": serializers.DictField(child=serializers.CharField()),
            "commonLabels": serializers.DictField(child=serializers.CharField()),
            "commonAnnotations": serializers.DictField(child=serializers.CharField()),
            "externalURL": serializers.CharField(),
            "alerts": serializers.ListField(child=inline_serializer("AlertmanagerAlert", fields={
                "status": serializers.ChoiceField(choices=["firing", "resolved"]),
                "labels": serializers.DictField(child=serializers.CharField()),
                "annotations": serializers.DictField(child=serializers.CharField()),
                "startsAt": serializers.DateTimeField(), "endsAt": serializers.DateTimeField(),
                "generatorURL": serializers.CharField(), "fingerprint": serializers.CharField(),
            })),
        }),
        responses={202: AcceptedSchema, **ERRORS},
        description="Prometheus Alertmanager's webhook (version 4), as Alertmanager sends it: one event per "
                    "alert. A re-sent notification changes nothing.",
    )
    def post(self, request):
        return super().post(request)


class GrafanaView(_IngestView):
    kind = "grafana"

    @extend_schema(
        tags=["events"], operation_id="integrations_grafana", parameters=[TOKEN_PARAMETER],
        request=inline_serializer("GrafanaWebhook", fields={
            "version": serializers.CharField(), "status": serializers.CharField(),
            "title": serializers.CharField(required=False), "message": serializers.CharField(required=False),
            "groupKey": serializers.CharField(),
            "alerts": serializers.ListField(child=inline_serializer("GrafanaAlert", fields={
                "status": serializers.ChoiceField(choices=["firing", "resolved"]),
                "labels": serializers.DictField(child=serializers.CharField()),
                "annotations": serializers.DictField(child=serializers.CharField()),
                "startsAt": serializers.DateTimeField(), "endsAt": serializers.DateTimeField(),
                "fingerprint": serializers.CharField(),
            })),
        }),
        responses={202: AcceptedSchema, **ERRORS},
        description="Grafana alerting's webhook contact point (version 1): one event per alert.",
    )
    def post(self, request):
        return super().post(request)
