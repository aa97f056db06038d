"""One exception handler for the management API: every client error is 4xx JSON naming the field."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ops.errors import Conflict, DomainError, NotFound


def domain_status(exc: DomainError) -> int:
    """The HTTP status of a domain refusal: the one place the API decides it."""
    if isinstance(exc, NotFound):
        return status.HTTP_404_NOT_FOUND
    if isinstance(exc, Conflict):
        return status.HTTP_409_CONFLICT
    return status.HTTP_400_BAD_REQUEST


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus domain refusals (ours and Django's validation errors) as 4xx naming
    the field. Anything else, a plain ValueError included, is a bug and stays a 500."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DomainError):
        return Response({exc.field: [exc.message]}, status=domain_status(exc))
    return drf_exception_handler(exc, context)
