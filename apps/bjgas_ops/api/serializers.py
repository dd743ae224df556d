from rest_framework import serializers

from apps.bjgas_platform.api.serializers import ScopedSerializer
from apps.bjgas_platform.models import (
    Attachment,
    Comment,
    CommentKind,
    SlaClock,
    SupportGroup,
    User,
    Vendor,
)

from ..models import Channel, Incident, IncidentSegment, Task
from ..services.incidents import is_overdue


class TaskSerializer(ScopedSerializer):
    state_name = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = [
            "id",
            "number",
            "title",
            "description",
            "requester",
            "company",
            "department",
            "region",
            "business_system",
            "vendor",
            "support_group",
            "assignee",
            "priority",
            "due_date",
            "workflow",
            "state",
            "state_name",
            "version",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "number",
            "workflow",
            "state",
            "version",
            "created_by",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {"requester": {"required": False}, "company": {"required": False}}

    def get_state_name(self, task: Task) -> str:
        state = task.current_state()
        return state.name if state else task.state

    def validate(self, attrs):
        # Fields the service fills in (requester, company) are checked by the service.
        if self.instance is None:
            return attrs
        return super().validate(attrs)


class IncidentSerializer(ScopedSerializer):
    """An incident; priority, tier and the workflow's stamps are computed, never sent."""

    state_name = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()
    priority_display = serializers.CharField(source="get_priority_display", read_only=True)
    urgency_display = serializers.CharField(source="get_urgency_display", read_only=True)
    impact_display = serializers.CharField(source="get_impact_display", read_only=True)
    severity_display = serializers.CharField(source="get_severity_display", read_only=True)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)

    class Meta:
        model = Incident
        fields = [
            "id",
            "number",
            "title",
            "description",
            "requester",
            "requester_phone",
            "requester_extension",
            "company",
            "department",
            "region",
            "business_system",
            "catalog_item",
            "category",
            "channel",
            "urgency",
            "urgency_display",
            "impact",
            "impact_display",
            "priority",
            "priority_display",
            "severity",
            "severity_display",
            "overdue",
            "support_group",
            "tier",
            "assignee",
            "vendor",
            "resolution_code",
            "resolution_notes",
            "workflow",
            "state",
            "state_name",
            "version",
            "created_at",
            "resolved_at",
            "auto_close_at",
            "closed_at",
            "reassignment_count",
            "reopen_count",
            "created_by",
            "updated_at",
        ]
        read_only_fields = [
            "number",
            "priority",
            "tier",
            "workflow",
            "state",
            "version",
            "created_at",
            "resolved_at",
            "auto_close_at",
            "closed_at",
            "reassignment_count",
            "reopen_count",
            "created_by",
            "updated_at",
        ]
        extra_kwargs = {"requester": {"required": False}, "company": {"required": False}}

    def get_state_name(self, incident: Incident) -> str:
        state = incident.current_state()
        return state.name if state else incident.state

    def get_overdue(self, incident: Incident) -> bool:
        return is_overdue(incident)

    def validate(self, attrs):
        # On creation the service fills in and checks requester, company and priority.
        if self.instance is None:
            return attrs
        return super().validate(attrs)


class AssignSerializer(serializers.Serializer):
    support_group = serializers.PrimaryKeyRelatedField(queryset=SupportGroup.objects.all())
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True), required=False, allow_null=True
    )
    vendor = serializers.PrimaryKeyRelatedField(
        queryset=Vendor.objects.all(), required=False, allow_null=True
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class AttachmentSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = ["id", "name", "size", "is_public", "comment", "url", "created_at"]

    def get_url(self, attachment: Attachment) -> str:
        request = self.context.get("request")
        url = attachment.get_absolute_url()
        return request.build_absolute_uri(url) if request else url


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.StringRelatedField()
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)
    attachments = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = ["id", "kind", "kind_display", "author", "body", "created_at", "attachments"]

    def get_attachments(self, comment: Comment) -> list[dict]:
        files = [a for a in comment.attachments.all() if a.is_public or self.context["notes"]]
        return AttachmentSerializer(files, many=True, context=self.context).data


class NewCommentSerializer(serializers.Serializer):
    body = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=[
            (CommentKind.REPLY, CommentKind.REPLY.label),
            (CommentKind.NOTE, CommentKind.NOTE.label),
        ],
        default=CommentKind.REPLY,
    )
    files = serializers.ListField(child=serializers.FileField(), required=False, default=list)


class SupplementSerializer(serializers.Serializer):
    text = serializers.CharField()
    files = serializers.ListField(child=serializers.FileField(), required=False, default=list)


class SlaClockSerializer(serializers.ModelSerializer):
    metric_display = serializers.CharField(source="get_metric_display", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    policy = serializers.StringRelatedField()

    class Meta:
        model = SlaClock
        fields = [
            "metric",
            "metric_display",
            "policy",
            "limit_seconds",
            "started_at",
            "due_at",
            "stopped_at",
            "elapsed_seconds",
            "paused_seconds",
            "status",
            "status_display",
            "breached",
            "warning",
        ]


class IncidentSegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = IncidentSegment
        fields = [
            "state",
            "state_category",
            "sla_running",
            "support_group",
            "tier",
            "assignee",
            "vendor",
            "channel",
            "started_at",
            "ended_at",
            "wall_seconds",
            "business_seconds",
        ]
