"""Celery tasks of the platform layer: thin, safe to run twice."""

import logging

from celery import shared_task

from .models import Workflow
from .services.workflow import check_workflow

logger = logging.getLogger(__name__)


@shared_task(ignore_result=False)
def check_workflows() -> dict[str, list[str]]:
    """Check every active workflow; return {workflow code: problems} for the broken ones."""
    broken: dict[str, list[str]] = {}
    for workflow in Workflow.objects.filter(is_active=True).select_related("model"):
        errors = [str(error) for error in check_workflow(workflow)]
        if errors:
            broken[workflow.code] = errors
            logger.warning("workflow %s is broken: %s", workflow.code, " ".join(errors))
    return broken


@shared_task(name="apps.bjgas_platform.tasks.deliver_outbox", ignore_result=True)
def deliver_outbox(batch: int = 100) -> dict[str, int]:
    """Deliver the due outbox messages; queue another run when the batch was full."""
    from .services.notifications import deliver_pending, kick_delivery

    counts = deliver_pending(batch=batch)
    if sum(counts.values()) >= batch:
        kick_delivery()
    return counts


@shared_task(name="apps.bjgas_platform.tasks.sla_sweep", ignore_result=True)
def sla_sweep() -> int:
    """Fire the SLA reminders, breaches and escalations that are due; return how many."""
    from .services.sla import sweep

    return sweep()


@shared_task(name="apps.bjgas_platform.tasks.reapply_sla", ignore_result=True)
def reapply_sla(policy_id: int | None = None, calendar_id: int | None = None) -> int:
    """Derive again the clocks of the open records a policy or calendar (or all) touches."""
    from .models import BusinessCalendar, SlaPolicy
    from .services.sla import reapply_policies

    target = None
    if policy_id is not None:
        target = SlaPolicy.objects.filter(pk=policy_id).first()
    elif calendar_id is not None:
        target = BusinessCalendar.objects.filter(pk=calendar_id).first()
    if target is None and (policy_id is not None or calendar_id is not None):
        return 0  # deleted meanwhile: nothing left to apply
    return reapply_policies(target)
