"""Import jobs started from the desk: queue one, run it in the background, report on it.

An import writes everything in one long transaction, so the job's own row cannot show
progress while it runs (on SQLite no other connection may write meanwhile, and on
MariaDB the row would stay invisible until the commit). Progress therefore goes to the
Django cache under a key per job (rows done and total, the stage, the rate and the time
left), which the job page polls; the job row gets the counts and the bad rows at the end.

A worker that dies mid-import (killed, out of memory, machine restarted) cannot say so:
its transaction rolls back and the job would show "running" for ever. While a job runs,
a thread of the worker writes a heartbeat to the cache every HEARTBEAT_EVERY seconds; a
running job without one for STALLED_AFTER seconds is marked failed (every minute by the
beat, and when its page is read).
"""

from __future__ import annotations

import io
import logging
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy

from apps.bjgas_platform.models import Company, User

from ..importers.common import TableError
from ..importers.records import ImportRefused, ImportSummary
from ..models import ImportFormat, ImportJob, ImportMapping, ImportStatus

logger = logging.getLogger(__name__)

PROGRESS_TTL = 24 * 3600
PROGRESS_EVERY = 0.5  # seconds between two cache writes
HEARTBEAT_EVERY = 30  # seconds between two signs of life of a running job
STALLED_AFTER = 5 * 60  # seconds without one: the worker is gone
STALLED_SCHEDULE = "bjgas: mark import jobs whose worker stopped as failed"
STALLED_TASK = "apps.bjgas_ops.tasks.fail_stalled_import_jobs"
STAGES = {
    "queued": gettext_lazy("Waiting for a worker"),
    "read": gettext_lazy("Reading the file"),
    "prepare": gettext_lazy("Preparing people, groups and categories"),
    "write": gettext_lazy("Writing incidents"),
    "done": gettext_lazy("Finished"),
}


UNITS = {
    "read": pgettext_lazy("progress unit", "rows"),
    "prepare": pgettext_lazy("progress unit", "incidents"),
    "write": pgettext_lazy("progress unit", "incidents"),
    "done": pgettext_lazy("progress unit", "rows"),
}


def progress_key(job_id: int) -> str:
    return f"bjgas:import-job:{job_id}:progress"


def heartbeat_key(job_id: int) -> str:
    return f"bjgas:import-job:{job_id}:alive"


@contextmanager
def heartbeat(job_id: int):
    """While the block runs, write the job's heartbeat (a Unix time) from a thread."""
    key, stop = heartbeat_key(job_id), threading.Event()

    def write() -> None:
        try:
            cache.set(key, time.time(), STALLED_AFTER * 2)
        except Exception:  # a cache outage must not stop the import itself
            logger.warning("Import job %s: the heartbeat could not be written", job_id)

    def beat() -> None:
        while not stop.wait(HEARTBEAT_EVERY):
            write()

    write()
    thread = threading.Thread(target=beat, name=f"bjgas-import-{job_id}-alive", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        cache.delete(key)


def fail_stalled_jobs(job_ids: list[int] | None = None) -> int:
    """Mark failed the running jobs with no heartbeat for STALLED_AFTER seconds; say how many.

    A job that started less than STALLED_AFTER ago is left alone (its first beat may still
    be on its way). Should its worker only have been slow, its end writes the real result
    over this one.
    """
    now = timezone.now()
    running = ImportJob.objects.filter(
        status=ImportStatus.RUNNING, started_at__lt=now - timedelta(seconds=STALLED_AFTER)
    )
    if job_ids is not None:
        running = running.filter(pk__in=job_ids)
    count = 0
    for pk, options in running.values_list("pk", "options"):
        beat = cache.get(heartbeat_key(pk))
        if beat is not None and beat > time.time() - STALLED_AFTER:
            continue
        language = (options or {}).get("language") or settings.LANGUAGE_CODE
        with translation.override(language):
            message = _(
                "The import stopped: its worker gave no sign of life for %(minutes)s minutes "
                "(stopped or restarted). An import that does not finish saves nothing; "
                "upload the file again."
            ) % {"minutes": STALLED_AFTER // 60}
        count += ImportJob.objects.filter(pk=pk, status=ImportStatus.RUNNING).update(
            status=ImportStatus.FAILED, finished_at=now, message=message
        )
        cache.delete(progress_key(pk))
        logger.warning("Import job %s: no heartbeat for %s s, marked failed", pk, STALLED_AFTER)
    return count


def _may_have_stalled(job: ImportJob) -> bool:
    """Whether a job could be stalled at all (running, and long enough): the page polls
    often, and a job that cannot be costs no query."""
    oldest = timezone.now() - timedelta(seconds=STALLED_AFTER)
    return job.status == ImportStatus.RUNNING and (job.started_at or oldest) <= oldest


def ensure_stalled_schedule() -> None:
    """Look for import jobs whose worker stopped every minute, in the beat database, once."""
    from apps.bjgas_platform.services.schedules import ensure_every_minute

    ensure_every_minute(STALLED_SCHEDULE, STALLED_TASK)


def create_import_job(
    user: User,
    upload,
    *,
    layout: str,
    mapping: ImportMapping | None = None,
    zone: str = "",
    company: Company | None = None,
    strict: bool = False,
) -> ImportJob:
    """Save an uploaded file as a queued job and run it in the background after commit.

    The mapping's settings are copied into the job (`options["mapping"]`): the job imports
    with the mapping as it was when queued, even if it is edited or deleted meanwhile.
    """
    from ..importers.spreadsheet import snapshot
    from ..tasks import run_import_job as task

    job = ImportJob(
        format=layout,
        original_name=Path(upload.name).name[:200],
        mapping=mapping,
        options={
            "zone": zone or settings.TIME_ZONE,
            "company": company.pk if company else None,
            "strict": bool(strict),
            "language": translation.get_language() or settings.LANGUAGE_CODE,
            "mapping": snapshot(mapping) if mapping is not None else None,
        },
        created_by=user,
    )
    job.file.save(Path(upload.name).name, upload, save=False)
    job.save()
    transaction.on_commit(lambda: task.delay(job.pk))
    return job


class JobProgress:
    """The progress callback of one job: writes rows done, rate and time left to the cache."""

    def __init__(self, job_id: int):
        self.key = progress_key(job_id)
        self.stage = ""
        self.stage_started = time.monotonic()
        self.last_write = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self.stage:
            self.stage, self.stage_started = stage, now
        elif total and done < total and now - self.last_write < PROGRESS_EVERY:
            return
        self.last_write = now
        elapsed = now - self.stage_started
        rate = done / elapsed if elapsed > 0 and done else 0.0
        eta = (total - done) / rate if rate and total >= done else None
        cache.set(
            self.key,
            {"stage": stage, "done": done, "total": total, "rate": rate, "eta": eta},
            PROGRESS_TTL,
        )


def read_progress(job: ImportJob) -> dict:
    """Return what the job page shows: status, stage, rows done/total, rate, time left."""
    if _may_have_stalled(job) and fail_stalled_jobs([job.pk]):
        job.refresh_from_db()
    live = cache.get(progress_key(job.pk)) if job.status == ImportStatus.RUNNING else None
    if live is None:
        done = job.rows_done if job.status != ImportStatus.QUEUED else 0
        stage = "queued" if job.status == ImportStatus.QUEUED else "done"
        live = {"stage": stage, "done": done, "total": job.rows_total, "rate": 0.0, "eta": None}
        if job.status == ImportStatus.RUNNING:
            live["stage"] = "read"
    total, done = live["total"], live["done"]
    if job.status in (ImportStatus.DONE, ImportStatus.FAILED):
        percent = 100
    elif total:
        percent = min(100, round(100 * done / total))
    else:
        percent = 0
    return {
        "status": job.status,
        "status_display": str(job.get_status_display()),
        "finished": job.status in (ImportStatus.DONE, ImportStatus.FAILED),
        "stage": live["stage"],
        "stage_display": str(STAGES.get(live["stage"], live["stage"])),
        "unit": str(UNITS.get(live["stage"], "")),
        "done": done,
        "total": total,
        "percent": percent,
        "rate": round(live["rate"] or 0.0, 1),
        "eta_seconds": round(live["eta"]) if live.get("eta") is not None else None,
        "eta_display": format_seconds(live["eta"]) if live.get("eta") is not None else "",
    }


def format_seconds(seconds: float) -> str:
    """Return a short duration, e.g. '1 min 05 s'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return _("%(s)s s") % {"s": seconds}
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return _("%(m)s min %(s)02d s") % {"m": minutes, "s": seconds}
    hours, minutes = divmod(minutes, 60)
    return _("%(h)s h %(m)02d min") % {"h": hours, "m": minutes}


def run_import_job(job_id: int) -> None:
    """Run a queued job and store its result; a job already taken is left alone."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return
    job = ImportJob.objects.select_related("mapping", "created_by").get(pk=job_id)
    language = job.options.get("language") or settings.LANGUAGE_CODE
    progress = JobProgress(job.pk)
    with translation.override(language):
        try:
            with heartbeat(job.pk), local_copy(job) as path:
                summary = _run(job, path, progress)
        except ImportRefused as exc:
            refused = ImportSummary(errors=exc.errors, refused=True)
            _finish(job, refused, _summary_message(refused))
        except (TableError, ValueError, Company.DoesNotExist) as exc:
            _finish(job, None, str(exc) or _("The file could not be read."))
        except Exception:
            logger.exception("Import job %s failed", job.pk)
            _finish(job, None, _("The import stopped on an unexpected error; nothing was saved."))
        else:
            _finish(job, summary, _summary_message(summary))
    cache.delete(progress_key(job.pk))


def _run(job: ImportJob, path: Path, progress: JobProgress) -> ImportSummary:
    from ..importers.servicenow import import_servicenow
    from ..importers.spreadsheet import import_spreadsheet

    options = job.options or {}
    company = Company.objects.get(pk=options["company"]) if options.get("company") else None
    common = {
        "strict": bool(options.get("strict")),
        "company": company,
        "actor": job.created_by,
        "progress": progress,
    }
    zone = options.get("zone") or None
    progress("read", 0, 0)
    if job.format == ImportFormat.SERVICENOW:
        from ..importers.common import resolve_zone

        return import_servicenow(path, zone=resolve_zone(zone), **common)
    return import_spreadsheet(
        path, layout=job.format, mapping=job_mapping(job), zone=zone, **common
    )


def job_mapping(job: ImportJob):
    """The mapping a job imports with: its snapshot, else (older jobs) the saved mapping."""
    from ..importers.spreadsheet import MappingSpec

    kept = (job.options or {}).get("mapping")
    if kept:
        return MappingSpec.of(kept)
    return job.mapping


def mapping_name(job: ImportJob) -> str:
    """The name of the job's mapping, also once the mapping has been deleted ('' if none)."""
    if job.mapping is not None:
        return job.mapping.name
    kept = (job.options or {}).get("mapping") or {}
    return kept.get("name") or ""


@contextmanager
def local_copy(job: ImportJob):
    """Yield a path of the job's file on this machine (a temporary copy if stored remotely)."""
    try:
        path = Path(job.file.path)
    except NotImplementedError:
        path = None
    if path is not None:
        yield path
        return
    suffix = Path(job.file.name).suffix
    with tempfile.NamedTemporaryFile(suffix=suffix) as copy, job.file.open("rb") as source:
        shutil.copyfileobj(source, copy)
        copy.flush()
        yield Path(copy.name)


def _finish(job: ImportJob, summary: ImportSummary | None, message: str) -> None:
    job.finished_at = timezone.now()
    job.message = message
    if summary is None:
        job.status = ImportStatus.FAILED
    else:
        job.status = ImportStatus.FAILED if summary.refused else ImportStatus.DONE
        job.rows_total = job.rows_done = summary.rows
        job.created, job.updated, job.events = summary.created, summary.updated, summary.events
        job.errors = [e.as_dict() for e in summary.errors]
    job.save()


def _summary_message(summary: ImportSummary) -> str:
    bad = len(summary.errors)
    if summary.refused:
        return ngettext(
            "Nothing was imported: %(count)s row is bad. Correct it and import again.",
            "Nothing was imported: %(count)s rows are bad. Correct them and import again.",
            bad,
        ) % {"count": bad}
    text = _(
        "%(created)s incidents created, %(updated)s updated, %(events)s events "
        "in %(seconds)s s (%(rate)s events/s)."
    ) % {
        "created": summary.created,
        "updated": summary.updated,
        "events": summary.events,
        "seconds": round(summary.seconds, 1),
        "rate": round(summary.events_per_second),
    }
    if bad:
        skipped = ngettext(
            "%(count)s bad row was skipped; download the error report.",
            "%(count)s bad rows were skipped; download the error report.",
            bad,
        ) % {"count": bad}
        # Two sentences: a space between them in English, none in Chinese.
        text = _("%(done)s %(skipped)s") % {"done": text, "skipped": skipped}
    return text


def error_report(job: ImportJob) -> bytes:
    """Return the job's bad rows as an Excel file: row, number, column, reason (text cells)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = _("Bad rows")
    sheet.append([_("Row"), _("Number"), _("Column"), _("Reason")])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for error in job.errors or []:
        sheet.append(
            [
                error.get("row"),
                text_cell(error.get("number")),
                text_cell(error.get("column")),
                text_cell(error.get("reason")),
            ]
        )
    for row in sheet.iter_rows(min_row=2):
        for cell in row[1:]:
            cell.data_type = "s"  # never a formula, whatever the text starts with
    for letter, width in zip("ABCD", (8, 20, 20, 80), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def text_cell(value) -> str:
    return "" if value is None else str(value)
