"""One exception handler for the management API: every client error is 4xx JSON naming the field."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from rollout.rollouts import RolloutError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus domain validation errors (Django's and ValueError) as 400."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RolloutError):
        return Response({exc.field: [exc.message]}, status=exc.status)
    if isinstance(exc, ValueError):
        field, _, message = str(exc).partition(": ")
        body = {field: [message]} if message else {"detail": [str(exc)]}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
