from rest_framework import serializers

from apps.bjgas_platform.api.serializers import ScopedSerializer

from ..models import Task


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
