"""Request ids: one id per HTTP request, on every log line it causes, here and in the workers.

`RequestIdMiddleware` (first in MIDDLEWARE) takes the caller's `X-Request-ID` when it is safe to log (letters,
digits and `.-_:`, at most 64 characters: a proxy's or a client's id joins their logs to ours), else makes
one, hands it to django-structlog's RequestMiddleware (which binds it in structlog's context, so every log line
of the request, structlog's or the standard library's, carries `request_id`) and returns it in the response's
`X-Request-ID` header.

Background work leaves a request through the outbox (servicedesk.outbox): `outbox_enqueue` stores the current
id on the message (`OutboxMessage.request_id`), and the worker binds it while the message runs, whoever runs
it (the task handed off on commit, the relay from beat, a retry). A task published directly carries the
context in its Celery headers (django-structlog's Celery receivers).
"""

import re
import uuid
from contextlib import contextmanager

import structlog
from django.core.signals import request_finished

HEADER = "X-Request-ID"
MAX_LENGTH = 64
_SAFE = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._:-]{{0,{MAX_LENGTH - 1}}}$")


def request_id_clean(value: str | None) -> str:
    """The incoming id when it is safe to log and store, else ""."""
    value = (value or "").strip()
    return value if _SAFE.match(value) else ""


def request_id_new() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    """The id bound in this context (a request, or a worker running a message), else ""."""
    return str(structlog.contextvars.get_contextvars().get("request_id") or "")


@contextmanager
def request_id_bound(request_id: str):
    """Bind `request_id` for the log lines of the block (nothing when empty); the previous context after."""
    if not request_id:
        yield
        return
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        yield


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_clean(request.META.get("HTTP_X_REQUEST_ID")) or request_id_new()
        # django-structlog's middleware (next in line) binds what it finds in this header; request.headers is
        # cached from META on first use, so drop any copy made before.
        request.META["HTTP_X_REQUEST_ID"] = request_id
        request.__dict__.pop("headers", None)
        request.request_id = request_id
        response = self.get_response(request)
        response[HEADER] = request_id
        # django-structlog's middleware has cleared its context already, but Django logs a 4xx or 5xx answer
        # ("Not Found: ...", django.request) after the whole middleware chain: keep the id bound until the
        # response is closed (request_finished, below).
        structlog.contextvars.bind_contextvars(request_id=request_id)
        return response


def _forget_request_id(**kwargs):
    structlog.contextvars.unbind_contextvars("request_id")


request_finished.connect(_forget_request_id, dispatch_uid="servicedesk.requestid.forget")
