"""Import jobs from the desk: the form, the background run, the job page, its progress poll,
the error report, who may see a job, and the column-mapping pages."""

import io
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from openpyxl import load_workbook

from apps.bjgas_ops.models import ImportFormat, ImportJob, ImportMapping, ImportStatus, Incident
from apps.bjgas_ops.services.import_jobs import (
    STALLED_AFTER,
    STALLED_SCHEDULE,
    STALLED_TASK,
    JobProgress,
    create_import_job,
    heartbeat,
    heartbeat_key,
    run_import_job,
)
from apps.bjgas_ops.tasks import fail_stalled_import_jobs
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.tests.factories import UserFactory
from bjgas.celery import app

from .incident_fixtures import *  # noqa: F403 (the fixtures clock and world)
from .incident_fixtures import local

pytestmark = pytest.mark.django_db

ADD = "admin:bjgas_ops_importjob_add"
HEADER = (
    "number,incident_state,active,reassignment_count,reopen_count,sys_mod_count,made_sla,"
    "caller_id,opened_by,opened_at,sys_created_by,sys_created_at,sys_updated_by,sys_updated_at,"
    "contact_type,location,category,subcategory,u_symptom,cmdb_ci,impact,urgency,priority,"
    "assignment_group,assigned_to,knowledge,u_priority_confirmation,notify,problem_id,rfc,"
    "vendor,caused_by,closed_code,resolved_by,resolved_at,closed_at"
)


def sn_row(number, state, mod, updated, resolved="?", group="Group 56", assignee="?"):
    """A ServiceNow event-log row as in the dataset, with the values a test cares about."""
    return (
        f"{number},{state},true,0,0,{mod},true,Caller 2403,Opened by  8,29/2/2016 01:16,"
        f"Created by 6,29/2/2016 01:23,Updated by 21,{updated},Phone,Location 143,"
        f"Category 55,Subcategory 170,Symptom 72,?,2 - Medium,2 - Medium,3 - Moderate,"
        f"{group},{assignee},true,false,Do Not Notify,?,?,?,?,code 5,Resolved by 149,"
        f"{resolved},?"
    )


SERVICENOW_CSV = "\n".join(
    [
        HEADER,
        sn_row("INC0001", "New", 0, "29/2/2016 01:23"),
        sn_row("INC0001", "Resolved", 1, "29/2/2016 08:53", resolved="29/2/2016 08:53"),
        sn_row("INC0002", "Active", 0, "29/2/2016 02:00", assignee="Resolver 17"),
        sn_row("=1+2", "-100", 0, "29/2/2016 03:00"),
        sn_row("INC0003", "New", 0, "29/2/2016 04:00"),
    ]
)


def login(client, user):
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def grant(user, *codenames):
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="bjgas_ops", codename__in=codenames)
    )


@pytest.fixture
def boss(world):
    return UserFactory(username="boss", company=world.hq, is_superuser=True)


def job_url(job, name="change"):
    return reverse(f"admin:bjgas_ops_importjob_{name}", args=[job.pk])


def post_servicenow(client, world, django_capture_on_commit_callbacks, **extra):
    upload = SimpleUploadedFile("history.csv", SERVICENOW_CSV.encode(), "text/csv")
    data = {
        "file": upload,
        "format": ImportFormat.SERVICENOW,
        "zone": "Asia/Shanghai",
        "company": world.hq.pk,
        **extra,
    }
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(reverse(ADD), data)
    return response, queued


def run_queued(queued) -> None:
    """Run the callbacks queued on commit, with Celery running tasks in the caller."""
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        for callback in queued:
            callback()
    finally:
        app.conf.task_always_eager = eager


def test_desk_job_end_to_end(client, world, clock, boss, django_capture_on_commit_callbacks):
    login(client, boss)
    page = client.get(reverse(ADD)).content.decode()
    assert 'name="file"' in page and 'name="zone"' in page and "Download template" in page

    response, queued = post_servicenow(client, world, django_capture_on_commit_callbacks)

    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == job_url(job)
    assert (job.status, job.created_by, job.original_name) == ("queued", boss, "history.csv")
    assert job.options["company"] == world.hq.pk and job.options["strict"] is False
    assert len(queued) == 1  # the worker is asked only once the job row is committed

    run_queued(queued)

    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert (job.rows_done, job.created, job.updated, job.events) == (5, 3, 0, 4)
    assert [(e["row"], e["number"]) for e in job.errors] == [(5, "=1+2")]
    inc1 = Incident.objects.get(source_system="servicenow", source_key="INC0001")
    assert inc1.created_at == local(2016, 2, 29, 1, 16)
    assert inc1.resolved_at == local(2016, 2, 29, 8, 53)
    assert inc1.handling_seconds == (7 * 60 + 37) * 60

    page = client.get(job_url(job)).content.decode()
    assert "history.csv" in page and "Download error report" in page
    assert "unknown state &#x27;-100&#x27;" in page or "unknown state '-100'" in page
    assert job_url(job, "errors") in page
    assert "setTimeout(poll" not in page  # finished: no more polling
    assert cache.get(heartbeat_key(job.pk)) is None  # the worker's heartbeat ended with it

    progress = client.get(job_url(job, "progress")).json()
    assert progress["status"] == "done" and progress["finished"] is True
    assert (progress["done"], progress["total"], progress["percent"]) == (5, 5, 100)
    assert "3 incidents created" in progress["message"]

    report = client.get(job_url(job, "errors"))
    assert report["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(report.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("Row", "Number", "Column", "Reason")
    assert rows[1][:2] == (5, "=1+2") and "-100" in rows[1][3]
    assert sheet["B2"].data_type == "s"  # text, not a formula


def test_job_runs_once(client, world, clock, boss, django_capture_on_commit_callbacks):
    login(client, boss)
    _response, queued = post_servicenow(client, world, django_capture_on_commit_callbacks)
    run_queued(queued)
    job = ImportJob.objects.get()
    run_import_job(job.pk)  # a second delivery of the task
    job.refresh_from_db()
    assert job.created == 3 and Incident.objects.count() == 3


def test_strict_job_fails_and_imports_nothing(
    client, world, clock, boss, django_capture_on_commit_callbacks
):
    login(client, boss)
    _response, queued = post_servicenow(
        client, world, django_capture_on_commit_callbacks, strict="on"
    )
    run_queued(queued)
    job = ImportJob.objects.get()
    assert job.status == ImportStatus.FAILED
    assert Incident.objects.count() == 0
    assert "Nothing was imported" in job.message and len(job.errors) == 1


def test_progress_while_running(client, world, clock, boss, django_capture_on_commit_callbacks):
    login(client, boss)
    with django_capture_on_commit_callbacks(execute=False):
        job = create_import_job(
            boss, SimpleUploadedFile("a.csv", b"x"), layout=ImportFormat.ROWS, zone="UTC"
        )
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING)
    progress = JobProgress(job.pk)
    progress("write", 0, 2000)
    time.sleep(0.6)  # the reporter writes at most twice a second
    progress("write", 500, 2000)

    data = client.get(job_url(job, "progress")).json()
    assert (data["status"], data["finished"], data["stage"]) == ("running", False, "write")
    assert (data["done"], data["total"], data["percent"]) == (500, 2000, 25)
    assert data["stage_display"] == "Writing incidents"
    assert data["rate"] > 0 and data["eta_seconds"] is not None

    page = client.get(job_url(job)).content.decode()
    assert "setTimeout(poll" in page and "500 / 2000" in page
    listing = client.get(reverse("admin:bjgas_ops_importjob_changelist")).content.decode()
    assert 'title="25%"' in listing


def test_unreadable_file_fails_the_job(
    client, world, clock, boss, django_capture_on_commit_callbacks
):
    login(client, boss)
    upload = SimpleUploadedFile("broken.xlsx", b"not a workbook")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        client.post(reverse(ADD), {"file": upload, "format": ImportFormat.ROWS, "zone": "UTC"})
    run_queued(queued)
    job = ImportJob.objects.get()
    assert job.status == ImportStatus.FAILED
    assert "not a readable Excel workbook" in job.message


def test_others_cannot_see_a_job(client, world, clock, boss, django_capture_on_commit_callbacks):
    login(client, boss)
    _response, queued = post_servicenow(client, world, django_capture_on_commit_callbacks)
    run_queued(queued)
    job = ImportJob.objects.get()
    urls = [job_url(job), job_url(job, "progress"), job_url(job, "errors")]

    # A department head without the import permissions.
    head = UserFactory(username="head", company=world.hq, roles=[r.DEPARTMENT_HEAD])
    login(client, head)
    for url in urls:
        assert client.get(url).status_code in (403, 404)
    assert client.get(reverse("admin:bjgas_ops_importjob_changelist")).status_code == 403

    # A service-desk agent who may import (HQ company rule) but did not start this job.
    desk = world.desk
    grant(desk, "view_importjob", "add_importjob")
    login(client, desk)
    for url in urls:
        assert client.get(url).status_code == 404
    listing = client.get(reverse("admin:bjgas_ops_importjob_changelist")).content.decode()
    assert "history.csv" not in listing

    # The auditor's all-records rule shows every job.
    grant(world.aud, "view_importjob")
    login(client, world.aud)
    for url in urls:
        assert client.get(url).status_code == 200


def test_form_checks_the_mapping_layout(client, world, boss):
    mapping = ImportMapping.objects.create(name="jira", format=ImportFormat.EVENT_LOG)
    login(client, boss)
    upload = SimpleUploadedFile("list.csv", "编号,标题,报障时间\n".encode())
    response = client.post(
        reverse(ADD),
        {"file": upload, "format": ImportFormat.ROWS, "mapping": mapping.pk, "zone": "UTC"},
    )
    assert response.status_code == 200
    assert "This mapping is for the layout" in response.content.decode()
    assert ImportJob.objects.count() == 0


# ------------------------------------------------------------------ mappings


def test_mapping_admin_checks_json_and_offers_its_template(client, world, boss):
    login(client, boss)
    add = reverse("admin:bjgas_ops_importmapping_add")
    bad = client.post(
        add,
        {"name": "旧台账", "format": ImportFormat.ROWS, "columns": '{"nonsense": "X"}',
         "values": "{}", "time_format": ""},
    )  # fmt: skip
    assert bad.status_code == 200 and "Unknown field" in bad.content.decode()

    good = client.post(
        add,
        {"name": "旧台账", "format": ImportFormat.ROWS,
         "columns": '{"key": "工单号", "opened_at": "发生时间"}',
         "values": '{"priority": {"紧急": "P1"}}', "time_format": "%Y.%m.%d %H:%M"},
    )  # fmt: skip
    assert good.status_code == 302
    mapping = ImportMapping.objects.get(name="旧台账")
    assert mapping.columns == {"key": "工单号", "opened_at": "发生时间"}
    assert mapping.created_by == boss

    response = client.get(
        reverse("admin:bjgas_ops_importmapping_download_template", args=[mapping.pk])
    )
    headers = [c.value for c in load_workbook(io.BytesIO(response.content)).worksheets[0][1]]
    assert headers[:4] == ["工单号", "标题", "描述", "发生时间"]

    standard = client.get(reverse("admin:bjgas_ops_importjob_download_template_list"))
    first = load_workbook(io.BytesIO(standard.content)).worksheets[0]["A1"].value
    assert first == "编号"


def test_requester_sees_no_import_pages(client, world):
    login(client, world.zhang)
    for name in ("importjob_changelist", "importjob_add", "importmapping_changelist"):
        assert client.get(reverse(f"admin:bjgas_ops_{name}")).status_code == 403


def test_job_keeps_its_mapping_when_the_mapping_is_deleted(
    client, world, clock, boss, django_capture_on_commit_callbacks
):
    mapping = ImportMapping.objects.create(
        name="旧台账",
        format=ImportFormat.ROWS,
        columns={"key": "工单号", "opened_at": "发生时间"},
        time_format="%Y.%m.%d %H:%M",
    )
    old_pk = mapping.pk
    upload = SimpleUploadedFile(
        "ledger.csv", "工单号,标题,发生时间\nJ1,打印机,2026.03.02 09:00\n".encode(), "text/csv"
    )
    with django_capture_on_commit_callbacks(execute=False) as queued:
        job = create_import_job(
            boss, upload, layout=ImportFormat.ROWS, mapping=mapping, company=world.hq
        )
    mapping.delete()  # while the job waits for a worker

    run_queued(queued)

    job.refresh_from_db()
    assert job.mapping is None and job.status == ImportStatus.DONE
    assert (job.created, job.errors) == (1, [])
    j1 = Incident.objects.get(source_system=f"sheet-{old_pk}", source_key="J1")
    assert j1.created_at == local(2026, 3, 2, 9, 0)  # read with the mapping's time format
    login(client, boss)
    page = client.get(job_url(job)).content.decode()
    assert "旧台账" in page


def test_editing_a_mapping_does_not_change_a_queued_job(
    world, clock, boss, django_capture_on_commit_callbacks
):
    mapping = ImportMapping.objects.create(
        name="台账", format=ImportFormat.ROWS, columns={"key": "工单号"}
    )
    upload = SimpleUploadedFile(
        "ledger.csv", "工单号,标题,报障时间\nJ2,网络,2026-03-02 09:00\n".encode(), "text/csv"
    )
    with django_capture_on_commit_callbacks(execute=False) as queued:
        job = create_import_job(
            boss, upload, layout=ImportFormat.ROWS, mapping=mapping, company=world.hq
        )
    mapping.columns = {"key": "Ticket"}
    mapping.save()

    run_queued(queued)

    job.refresh_from_db()
    assert (job.status, job.created) == (ImportStatus.DONE, 1)
    assert Incident.objects.filter(source_system=f"sheet-{mapping.pk}", source_key="J2").exists()


def queued_job(boss, django_capture_on_commit_callbacks, language="en"):
    with django_capture_on_commit_callbacks(execute=False):
        job = create_import_job(
            boss, SimpleUploadedFile("a.csv", b"x"), layout=ImportFormat.ROWS, zone="UTC"
        )
    job.options["language"] = language
    job.save(update_fields=["options"])
    return job


def running_since(job, seconds_ago: int) -> None:
    started = timezone.now() - timedelta(seconds=seconds_ago)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING, started_at=started)


def test_a_job_whose_worker_stopped_is_marked_failed(
    client, world, clock, boss, django_capture_on_commit_callbacks
):
    gone = queued_job(boss, django_capture_on_commit_callbacks, language="zh-hans")
    stale = queued_job(boss, django_capture_on_commit_callbacks)
    alive = queued_job(boss, django_capture_on_commit_callbacks)
    young = queued_job(boss, django_capture_on_commit_callbacks)
    finished = queued_job(boss, django_capture_on_commit_callbacks)
    for job in (gone, stale, alive):
        running_since(job, 10 * 60)
    running_since(young, 60)  # its first heartbeat may still be on its way
    ImportJob.objects.filter(pk=finished.pk).update(status=ImportStatus.DONE)
    cache.set(heartbeat_key(stale.pk), time.time() - (STALLED_AFTER + 5))
    cache.set(heartbeat_key(alive.pk), time.time() - 20)

    assert fail_stalled_import_jobs() == 2
    status = dict(ImportJob.objects.values_list("pk", "status"))
    assert status[gone.pk] == status[stale.pk] == ImportStatus.FAILED
    assert status[alive.pk] == status[young.pk] == ImportStatus.RUNNING
    assert status[finished.pk] == ImportStatus.DONE
    gone.refresh_from_db()
    assert "5 分钟没有心跳" in gone.message and "不会保存任何数据" in gone.message
    assert gone.finished_at is not None
    stale.refresh_from_db()
    assert "5 minutes" in stale.message
    assert fail_stalled_import_jobs() == 0  # once only

    # The list and the job page find out by themselves, without waiting for the beat.
    young_start = timezone.now() - timedelta(hours=1)
    ImportJob.objects.filter(pk=young.pk).update(started_at=young_start)
    login(client, boss)
    client.get(reverse("admin:bjgas_ops_importjob_changelist"))
    assert ImportJob.objects.get(pk=young.pk).status == ImportStatus.FAILED
    ImportJob.objects.filter(pk=alive.pk).update(started_at=timezone.now() - timedelta(hours=1))
    cache.delete(heartbeat_key(alive.pk))
    data = client.get(job_url(alive, "progress")).json()
    assert (data["status"], data["finished"]) == ("failed", True)
    assert "no sign of life" in data["message"]


def test_a_running_job_beats_until_it_ends(world, clock, boss, django_capture_on_commit_callbacks):
    job = queued_job(boss, django_capture_on_commit_callbacks)
    with heartbeat(job.pk):
        beat = cache.get(heartbeat_key(job.pk))
        assert beat is not None and abs(beat - time.time()) < 5
        running_since(job, 3600)  # an old job, but its worker is alive
        assert fail_stalled_import_jobs() == 0
    assert cache.get(heartbeat_key(job.pk)) is None


def test_the_stalled_job_check_is_scheduled_every_minute():
    task = PeriodicTask.objects.get(name=STALLED_SCHEDULE)
    assert task.task == STALLED_TASK == fail_stalled_import_jobs.name
    assert (task.interval.every, task.interval.period) == (1, IntervalSchedule.MINUTES)
    assert task.enabled


def test_deleting_a_job_deletes_its_file_but_a_running_job_stays(
    client, world, clock, boss, django_capture_on_commit_callbacks
):
    login(client, boss)
    done = queued_job(boss, django_capture_on_commit_callbacks)
    running = queued_job(boss, django_capture_on_commit_callbacks)
    ImportJob.objects.filter(pk=done.pk).update(status=ImportStatus.DONE)
    running_since(running, 10)
    cache.set(heartbeat_key(running.pk), time.time())
    path = Path(done.file.path)
    assert path.exists()

    refused = client.post(job_url(running, "delete"), {"post": "yes"})
    assert refused.status_code == 403 and ImportJob.objects.filter(pk=running.pk).exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(job_url(done, "delete"), {"post": "yes"})
    assert response.status_code == 302
    assert not ImportJob.objects.filter(pk=done.pk).exists()
    assert not path.exists()
    assert Path(running.file.path).exists()
