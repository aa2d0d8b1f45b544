"""`Idempotency-Key` for API POSTs that create something: a client's retry never makes a second object.

A viewset gets it by listing `IdempotentCreateMixin` before DRF's `CreateModelMixin`. Then, per caller:
- no header: nothing changes;
- a new key: the create runs, and its 2xx response is stored in the same transaction as the object;
- the same key and the same request (method, path, body) again: the stored response is returned as it
  was (status and body), with `Idempotent-Replayed: true`, and nothing is created;
- the same key with another request: 422, naming the header;
- the same key while the first request is still running: 409 (a transaction-scoped advisory lock).
A response that is not 2xx (bad input, a conflict) is not stored, so the client may fix the body and retry
with the same key. Keys are kept IDEMPOTENCY_KEY_TTL_HOURS (24 h), then purged by beat.
"""

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http.request import RawPostDataException
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from servicedesk.locks import advisory_xact_lock
from servicedesk.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "A unique value per intended creation (e.g. a UUID), up to 255 characters. A retry with the same "
        "key and body within 24 hours returns the first response (header `Idempotent-Replayed: true`) and "
        "creates nothing; the same key with another body answers 422; the same key while the first request "
        "is still being processed answers 409."
    ),
)


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request; a JSON body is hashed in canonical form (key order and spacing ignored)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _owner(request) -> str:
    return f"user:{request.user.pk}"


def _lock(owner: str, key: str) -> bool:
    """Try to take a lock on (owner, key) until the transaction ends; False when another request holds it.
    (On SQLite, the local run, there is one writer at a time; the unique constraint still holds.)"""
    return advisory_xact_lock(f"{owner}\0{key}", wait=False)


def idempotent_create(request, create) -> Response:
    """Run `create()` (returning a DRF Response) at most once per (caller, Idempotency-Key)."""
    key = request.headers.get(HEADER)
    if key is None:
        return create()
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        message = f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters."
        return Response({"detail": message, HEADER: [message]}, status=status.HTTP_400_BAD_REQUEST)
    owner = _owner(request)
    try:
        body = request.body
    except RawPostDataException:  # something parsed the body already: hash what it parsed to
        body = json.dumps(request.data, sort_keys=True, default=str).encode()
    fingerprint = request_fingerprint(request.method, request.path, body)
    now = timezone.now()
    with transaction.atomic():
        if not _lock(owner, key):
            return Response({"detail": f"A request with this {HEADER} is still being processed; retry shortly."},
                            status=status.HTTP_409_CONFLICT)
        stored = IdempotencyKey.objects.filter(owner=owner, key=key).first()
        if stored is not None and stored.created_at <= now - _ttl():
            stored.delete()  # expired: the key is free again
            stored = None
        if stored is not None:
            if stored.fingerprint != fingerprint:
                message = (f"This {HEADER} was already used with a different request ({stored.method} "
                           f"{stored.path}); use a new key for a new request.")
                return Response({"detail": message, HEADER: [message]},
                                status=status.HTTP_422_UNPROCESSABLE_ENTITY)
            return Response(stored.response_body, status=stored.status_code, headers={REPLAYED_HEADER: "true"})
        response = create()
        if 200 <= response.status_code < 300:
            IdempotencyKey.objects.create(
                owner=owner, key=key, method=request.method, path=request.path[:500], fingerprint=fingerprint,
                status_code=response.status_code,
                response_body=json.loads(json.dumps(response.data, cls=DjangoJSONEncoder)),
                created_at=now,
            )
        return response


class IdempotentCreateMixin:
    """List before CreateModelMixin: POST honours the Idempotency-Key header (see the module doc)."""

    @extend_schema(parameters=[IDEMPOTENCY_KEY_PARAMETER])
    def create(self, request, *args, **kwargs):
        parent_create = super().create
        return idempotent_create(request, lambda: parent_create(request, *args, **kwargs))


def _ttl() -> timedelta:
    return timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)


def idempotency_keys_purge(*, now=None) -> int:
    """Forget keys older than IDEMPOTENCY_KEY_TTL_HOURS, in batches. The hourly retention run does this (rule
    "idempotency_keys", servicedesk.retention); this runs that rule alone, now."""
    from servicedesk.retention import rule_purge

    return rule_purge("idempotency_keys", now=now)
