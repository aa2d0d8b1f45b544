"""One exception handler: domain errors become 400/404/409 with a message a person can act on."""

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from servicedesk.errors import DomainError


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        body = {"detail": exc.message}
        if exc.field and exc.status_code == status.HTTP_400_BAD_REQUEST:
            body[exc.field] = [exc.message]
        return Response(body, status=exc.status_code)
    return drf_exception_handler(exc, context)
