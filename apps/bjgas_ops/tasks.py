"""Scheduled jobs of the service-management processes: thin, safe to run twice."""

from celery import shared_task

from .services import import_jobs, report_rollup
from .services.incidents import AUTO_CLOSE_TASK, auto_close_due_incidents


@shared_task(name=AUTO_CLOSE_TASK, ignore_result=True)
def auto_close_incidents() -> int:
    """Close resolved incidents whose auto-close time has come; return how many."""
    return auto_close_due_incidents()


@shared_task(name="apps.bjgas_ops.tasks.run_import_job", ignore_result=True)
def run_import_job(job_id: int) -> None:
    """Run a queued import job; a job already taken or finished is left alone."""
    import_jobs.run_import_job(job_id)


@shared_task(name=report_rollup.REFRESH_TASK, ignore_result=True)
def refresh_report_figures() -> int:
    """Recount the report figures of the days whose incidents changed; return how many."""
    return report_rollup.refresh()


@shared_task(name=import_jobs.STALLED_TASK, ignore_result=True)
def fail_stalled_import_jobs() -> int:
    """Mark failed the running import jobs whose worker stopped; return how many."""
    return import_jobs.fail_stalled_jobs()
