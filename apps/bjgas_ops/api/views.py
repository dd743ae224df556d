from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.bjgas_platform.api.base import ScopedModelViewSet, requested_version
from apps.bjgas_platform.api.serializers import TakeTransitionSerializer
from apps.bjgas_platform.api.views import WorkflowActionsMixin
from apps.bjgas_platform.models import SlaClock

from ..models import Channel, Incident, Task
from ..services import incidents as service
from ..services.tasks import create_task
from . import serializers as s


class TaskViewSet(WorkflowActionsMixin, ScopedModelViewSet):
    """Tasks the user may see; state changes only through `transition`."""

    queryset = Task.objects.select_related("workflow", "requester")
    serializer_class = s.TaskSerializer
    search_fields = ["number", "title", "requester__full_name"]
    filterset_fields = ["state", "priority", "business_system", "company", "support_group"]
    ordering_fields = ["number", "created_at", "priority"]

    def perform_create(self, serializer):
        serializer.instance = create_task(self.request.user, **serializer.validated_data)


def _django_errors(exc: DjangoValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(
        exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
    )


class IncidentViewSet(WorkflowActionsMixin, ScopedModelViewSet):
    """Incidents the user may see, with their urgency and an overdue flag from the SLA clocks.

    State changes go through `transition`; a change of group or person through `assign`.
    """

    queryset = Incident.objects.select_related(
        "workflow", "requester", "company", "support_group", "assignee"
    ).prefetch_related("workflow__states")
    serializer_class = s.IncidentSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    search_fields = ["number", "title", "requester__full_name", "requester__username"]
    filterset_fields = [
        "state",
        "priority",
        "urgency",
        "impact",
        "severity",
        "channel",
        "company",
        "department",
        "business_system",
        "catalog_item",
        "category",
        "support_group",
        "tier",
        "assignee",
        "vendor",
    ]
    ordering_fields = ["number", "created_at", "priority", "urgency", "resolved_at"]
    acting_actions = {"transition", "assign", "comments", "supplement"}

    def get_queryset(self):
        return service.with_overdue(super().get_queryset())

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        channel = data.pop("channel", None) or Channel.PORTAL
        try:
            serializer.instance = service.create_incident(
                self.request.user,
                channel=channel,
                files=self.request.FILES.getlist("files"),
                **data,
            )
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc

    def perform_update(self, serializer):
        try:
            serializer.instance = service.update_incident(
                serializer.instance,
                self.request.user,
                expected_version=requested_version(self.request),
                **serializer.validated_data,
            )
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc

    @extend_schema(request=TakeTransitionSerializer)
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        """Take an action; escalation and transfer go through `assign` with the new group."""
        if request.data.get("code") in service.REASSIGNING_TRANSITIONS:
            raise service.IncidentError(
                _(
                    "Escalation and transfer need the new support group: use the assign "
                    "action, which takes them."
                ),
                code="use_assign",
                field="code",
            )
        return super().transition(request, pk)

    @extend_schema(request=s.AssignSerializer, responses=s.IncidentSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        """Give the incident to a support group, person and vendor (escalates or transfers)."""
        incident = self.get_object()
        payload = s.AssignSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        updated = service.assign(incident, request.user, **payload.validated_data)
        return Response(self.get_serializer(updated).data)

    @extend_schema(
        methods=["GET"], responses=s.CommentSerializer(many=True), description="List comments."
    )
    @extend_schema(methods=["POST"], request=s.NewCommentSerializer, responses=s.CommentSerializer)
    @action(detail=True, methods=["get", "post"])
    def comments(self, request, pk=None):
        """List the comments the user may read (requesters never see internal notes), or add one."""
        incident = self.get_object()
        context = self._comment_context()
        if request.method == "GET":
            comments = service.visible_comments(incident, request.user).prefetch_related(
                "attachments"
            )
            return Response(s.CommentSerializer(comments, many=True, context=context).data)
        payload = s.NewCommentSerializer(data=self._with_files(request))
        payload.is_valid(raise_exception=True)
        comment = service.add_comment(incident, request.user, **payload.validated_data)
        return Response(
            s.CommentSerializer(comment, context=context).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=s.SupplementSerializer, responses=s.CommentSerializer)
    @action(detail=True, methods=["post"])
    def supplement(self, request, pk=None):
        """Add the requester's supplement (补充说明): text and files, multipart."""
        incident = self.get_object()
        payload = s.SupplementSerializer(data=self._with_files(request))
        payload.is_valid(raise_exception=True)
        comment = service.supplement_incident(incident, request.user, **payload.validated_data)
        return Response(
            s.CommentSerializer(comment, context=self._comment_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(responses=s.AttachmentSerializer(many=True))
    @action(detail=True, methods=["get"])
    def attachments(self, request, pk=None):
        """List the files of the incident the user may download."""
        incident = self.get_object()
        files = service.visible_attachments(incident, request.user)
        return Response(s.AttachmentSerializer(files, many=True, context={"request": request}).data)

    @extend_schema(responses=s.SlaClockSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="sla-clocks")
    def sla_clocks(self, request, pk=None):
        """List the incident's SLA clocks: limits, due times, time used and paused."""
        incident = self.get_object()
        clocks = SlaClock.objects.filter(
            content_type__app_label="bjgas_ops",
            content_type__model="incident",
            object_id=incident.pk,
        ).select_related("policy")
        return Response(s.SlaClockSerializer(clocks.order_by("pk"), many=True).data)

    @extend_schema(responses=s.IncidentSegmentSerializer(many=True))
    @action(detail=True, methods=["get"])
    def segments(self, request, pk=None):
        """List the spans of the incident's life: state, group, tier, assignee, vendor, time."""
        incident = self.get_object()
        return Response(s.IncidentSegmentSerializer(incident.segments.all(), many=True).data)

    def _comment_context(self) -> dict:
        return {
            "request": self.request,
            "notes": service.sees_internal_notes(self.request.user),
        }

    @staticmethod
    def _with_files(request) -> dict:
        data = {key: request.data.get(key) for key in request.data if key != "files"}
        data["files"] = request.FILES.getlist("files") if request.FILES else []
        return data
