"""Shared pieces of the REST API: scoped viewsets and the error format."""

from django.http import Http404
from rest_framework import status, viewsets
from rest_framework.response import Response
from rest_framework.views import exception_handler

from ..services.errors import PlatformError

ERROR_STATUS = {"not_found": status.HTTP_404_NOT_FOUND, "stale_record": status.HTTP_409_CONFLICT}


class ScopedQuerysetMixin:
    """Take rows only through the model's `visible_to`: out of scope answers 404."""

    def get_queryset(self):
        return super().get_queryset().visible_to(self.request.user)


class ScopedModelViewSet(ScopedQuerysetMixin, viewsets.ModelViewSet):
    """CRUD over the rows the user may see, with Django model permissions."""


class ScopedReadOnlyViewSet(ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """Read-only access over the rows the user may see."""


def api_exception_handler(exc, context):
    """Turn a service refusal into `{"code", "detail", "field"}` with a fitting status."""
    if isinstance(exc, PlatformError):
        body = {"code": exc.code, "detail": exc.message}
        if exc.field:
            body["field"] = exc.field
        return Response(body, status=ERROR_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST))
    if isinstance(exc, Http404):
        exc_response = exception_handler(exc, context)
        if exc_response is not None:
            exc_response.data = {"code": "not_found", "detail": exc_response.data["detail"]}
        return exc_response
    return exception_handler(exc, context)
