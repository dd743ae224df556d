from apps.bjgas_platform.api.base import ScopedModelViewSet
from apps.bjgas_platform.api.views import WorkflowActionsMixin

from ..models import Task
from ..services.tasks import create_task
from .serializers import TaskSerializer


class TaskViewSet(WorkflowActionsMixin, ScopedModelViewSet):
    """Tasks the user may see; state changes only through `transition`."""

    queryset = Task.objects.select_related("workflow", "requester")
    serializer_class = TaskSerializer
    search_fields = ["number", "title", "requester__full_name"]
    filterset_fields = ["state", "priority", "business_system", "company", "support_group"]
    ordering_fields = ["number", "created_at", "priority"]

    def perform_create(self, serializer):
        serializer.instance = create_task(self.request.user, **serializer.validated_data)
