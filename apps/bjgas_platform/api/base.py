"""Shared pieces of the REST API: scoped viewsets and the error format."""

from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import exception_handler

from ..models import WorkflowRecord
from ..services.errors import PlatformError
from ..services.workflow import lock_for_edit

ERROR_STATUS = {"not_found": status.HTTP_404_NOT_FOUND, "stale_record": status.HTTP_409_CONFLICT}


class ScopedQuerysetMixin:
    """Take rows only through the model's `visible_to`: out of scope answers 404."""

    def get_queryset(self):
        return super().get_queryset().visible_to(self.request.user)


def requested_version(request) -> int | None:
    """Return the `version` a PATCH or PUT says its copy of the record has, if it sends one."""
    value = request.data.get("version") if hasattr(request.data, "get") else None
    if value in (None, ""):
        return None
    try:
        version = int(value)
    except (TypeError, ValueError):
        version = -1
    if version < 0:
        raise serializers.ValidationError(
            {
                "version": [
                    _(
                        "The version must be a whole number, the one the record had when you "
                        "loaded it."
                    )
                ]
            }
        )
    return version


class ScopedModelViewSet(ScopedQuerysetMixin, viewsets.ModelViewSet):
    """CRUD over the rows the user may see, with Django model permissions.

    On workflow records, edits and deletions follow the desk's rule: refused in a state
    that does not let the user edit. An edit raises the record's version; one sending an
    older `version` than the record's is refused as stale (409).
    """

    def _is_record(self) -> bool:
        return issubclass(self.queryset.model, WorkflowRecord)

    def perform_update(self, serializer):
        if not self._is_record():
            return super().perform_update(serializer)
        expected = requested_version(self.request)
        with transaction.atomic():
            locked = lock_for_edit(serializer.instance, self.request.user, expected)
            locked.version += 1
            locked._history_user = self.request.user
            serializer.instance = locked  # fields not sent keep the locked row's values
            serializer.save()

    def perform_destroy(self, instance):
        if not self._is_record():
            return super().perform_destroy(instance)
        with transaction.atomic():
            lock_for_edit(instance, self.request.user, requested_version(self.request))
            instance.delete()


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
