"""Create and change tasks."""

from django.db import transaction

from apps.bjgas_platform.models import User
from apps.bjgas_platform.services.numbering import next_number
from apps.bjgas_platform.services.workflow import start_record

from ..models import Task


def create_task(actor: User, **fields) -> Task:
    """Create a task in its workflow's initial state, numbered TSK-YYYYMMDD-NNNN."""
    task = Task(**fields)
    task.created_by = actor
    if not task.requester_id:
        task.requester = actor
    if not task.company_id:
        task.company_id = task.requester.company_id
    if not task.department_id:
        task.department_id = task.requester.department_id
    task.full_clean(exclude=["number", "workflow", "state", "created_by"])
    with transaction.atomic():
        task.number = next_number("TSK")
        start_record(task, actor)
    return task
